//! NVIDIA GPU metrics and facts through NVML, loaded at run time.
//!
//! Input: `libnvidia-ml.so` (`nvml.dll` on Windows), opened with `dlopen` by `nvml-wrapper`
//! when the monitor is created; nothing is linked at build time, so cairn builds and runs on
//! machines without CUDA or a driver. When the library or a GPU is missing, [`Nvidia::open`]
//! returns `None` and the monitor has no GPU keys; nothing is logged.
//!
//! Output: per device `i`, W&B's keys `gpu.<i>.gpu` (utilisation %), `gpu.<i>.memory` (memory
//! controller busy %), `gpu.<i>.memoryAllocated` (% of memory in use),
//! `gpu.<i>.memoryAllocatedBytes`, `gpu.<i>.temp` (°C), `gpu.<i>.powerWatts`,
//! `gpu.<i>.enforcedPowerLimitWatts` and `gpu.<i>.powerPercent`; the same values again under
//! `gpu.process.<i>.*` when the monitored process runs on device `i`. A reading the device
//! refuses once (not supported by that board) is not asked for again.
//!
//! Shutdown: dropping [`Nvidia`] drops the `Nvml` handle, which calls `nvmlShutdown`.

use cairn_proto::{EnvironmentRecord, GpuNvidiaInfo};
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;

/// The metric names copied under `gpu.process.<i>.` for a device the process uses.
const PROCESS_METRICS: &[&str] = &[
    "gpu",
    "memory",
    "memoryAllocated",
    "memoryAllocatedBytes",
    "temp",
    "powerWatts",
    "enforcedPowerLimitWatts",
    "powerPercent",
];

/// The GPU metric names W&B writes as JSON integers (`"37"`, not `"37.0"`).
pub(crate) const INTEGER_METRICS: &[&str] = &["memory", "memoryAllocatedBytes"];

/// An open NVML library and which readings each device supports.
#[derive(Debug)]
pub(crate) struct Nvidia {
    nvml: Nvml,
    devices: Vec<Supported>,
}

/// Readings a device has not refused yet.
#[derive(Debug, Clone, Copy)]
struct Supported {
    utilization: bool,
    memory: bool,
    temperature: bool,
    power: bool,
    power_limit: bool,
}

impl Supported {
    const ALL: Self = Self {
        utilization: true,
        memory: true,
        temperature: true,
        power: true,
        power_limit: true,
    };
}

impl Nvidia {
    /// Loads NVML and counts the devices; `None` when the library is absent, the driver is
    /// not running or there is no GPU.
    pub(crate) fn open() -> Option<Self> {
        let nvml = Nvml::init().ok()?;
        let count = nvml.device_count().ok().filter(|n| *n > 0)?;
        let devices = vec![Supported::ALL; usize::try_from(count).ok()?];
        Some(Self { nvml, devices })
    }

    /// Appends one reading of every device to `out`, with `gpu.process.<i>.*` copies for the
    /// devices `pid` runs on.
    pub(crate) fn sample(&mut self, pid: u32, out: &mut Vec<(String, f64)>) {
        for (index, supported) in (0u32..).zip(self.devices.iter_mut()) {
            let Ok(device) = self.nvml.device_by_index(index) else {
                continue;
            };
            let mut readings: Vec<(&'static str, f64)> = Vec::new();
            if supported.utilization {
                match device.utilization_rates() {
                    Ok(rates) => {
                        readings.push(("gpu", f64::from(rates.gpu)));
                        readings.push(("memory", f64::from(rates.memory)));
                    }
                    Err(_) => supported.utilization = false,
                }
            }
            if supported.memory {
                match device.memory_info() {
                    Ok(memory) if memory.total > 0 => {
                        let used = memory.used as f64;
                        readings.push(("memoryAllocated", used / memory.total as f64 * 100.0));
                        readings.push(("memoryAllocatedBytes", used));
                    }
                    Ok(_) | Err(_) => supported.memory = false,
                }
            }
            if supported.temperature {
                match device.temperature(TemperatureSensor::Gpu) {
                    Ok(celsius) => readings.push(("temp", f64::from(celsius))),
                    Err(_) => supported.temperature = false,
                }
            }
            if supported.power {
                match device.power_usage() {
                    Ok(milliwatts) => {
                        let watts = f64::from(milliwatts) / 1000.0;
                        readings.push(("powerWatts", watts));
                        if supported.power_limit {
                            match device.enforced_power_limit() {
                                Ok(limit) if limit > 0 => {
                                    let limit = f64::from(limit) / 1000.0;
                                    readings.push(("enforcedPowerLimitWatts", limit));
                                    readings.push(("powerPercent", watts / limit * 100.0));
                                }
                                Ok(_) | Err(_) => supported.power_limit = false,
                            }
                        }
                    }
                    Err(_) => supported.power = false,
                }
            }

            let in_use = pid != 0
                && [
                    device.running_compute_processes(),
                    device.running_graphics_processes(),
                ]
                .into_iter()
                .flatten()
                .flatten()
                .any(|process| process.pid == pid);

            for (name, value) in &readings {
                out.push((format!("gpu.{index}.{name}"), *value));
            }
            if in_use {
                for (name, value) in readings.iter().filter(|(n, _)| PROCESS_METRICS.contains(n)) {
                    out.push((format!("gpu.process.{index}.{name}"), *value));
                }
            }
        }
    }

    /// Fills the GPU facts of an environment record: count, type (the first device's name),
    /// CUDA driver version and one [`GpuNvidiaInfo`] per device.
    pub(crate) fn probe(&self, env: &mut EnvironmentRecord) {
        for index in (0u32..).take(self.devices.len()) {
            let Ok(device) = self.nvml.device_by_index(index) else {
                continue;
            };
            let info = GpuNvidiaInfo {
                name: device.name().unwrap_or_default(),
                memory_total: device.memory_info().map(|m| m.total).unwrap_or(0),
                cuda_cores: device.num_cores().unwrap_or(0),
                architecture: device
                    .architecture()
                    .map(|a| format!("{a:?}"))
                    .unwrap_or_default(),
                uuid: device.uuid().unwrap_or_default(),
                pci_bus_id: device.pci_info().map(|p| p.bus_id).unwrap_or_default(),
                numa_node: None,
            };
            if env.gpu_type.is_empty() {
                env.gpu_type.clone_from(&info.name);
            }
            env.gpu_nvidia.push(info);
        }
        env.gpu_count = u32::try_from(env.gpu_nvidia.len()).unwrap_or(u32::MAX);
        if let Ok(version) = self.nvml.sys_cuda_driver_version() {
            env.cuda_version = format!(
                "{}.{}",
                nvml_wrapper::cuda_driver_version_major(version),
                nvml_wrapper::cuda_driver_version_minor(version)
            );
        }
    }
}

/// Whether a `gpu.<i>.<name>` or `gpu.process.<i>.<name>` key holds one of W&B's integer
/// metrics.
pub(crate) fn is_integer_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("gpu.") else {
        return false;
    };
    let rest = rest.strip_prefix("process.").unwrap_or(rest);
    rest.split_once('.').is_some_and(|(index, name)| {
        !index.is_empty()
            && index.bytes().all(|b| b.is_ascii_digit())
            && INTEGER_METRICS.contains(&name)
    })
}
