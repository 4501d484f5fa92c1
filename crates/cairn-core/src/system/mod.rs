//! System metrics: W&B's `system.*` charts and the machine facts of the environment record.
//!
//! [`SystemMonitor`] takes one reading of the machine and of the monitored process per
//! [`SystemMonitor::sample`] call; it owns no thread and no timer. The pipeline calls it every
//! [`SystemConfig::interval`] ([`DEFAULT_INTERVAL`], 15 s, as W&B) and logs
//! [`SystemMonitor::stats_record`] as a `Record.stats`. [`probe_environment`] (or
//! [`SystemMonitor::probe_environment`]) gives the facts W&B puts in its environment record
//! once per run.
//!
//! Input: Linux `/proc` and `/sys` (read as text; the parsers are in `procfs`), `statvfs` of
//! each disk path and, when [`SystemConfig::gpu`] is set and `libnvidia-ml.so` can be
//! loaded, NVML (`gpu`). Output: `(key, value)` pairs with W&B 0.31's key names, in the order
//! W&B writes them (as seen in `testdata/wandb-0.31/stats`):
//!
//! | key | value |
//! |---|---|
//! | `gpu.<i>.*`, `gpu.process.<i>.*` | NVML readings (see the `gpu` module), only with a GPU |
//! | `cpu` | process CPU time over wall time, % of one core divided by the physical core count |
//! | `network.sent`, `network.recv` | bytes since the monitor started, all interfaces but loopback and enslaved ones |
//! | `network.tcpRetransmits` | TCP segments retransmitted since the monitor started (machine-wide) |
//! | `disk.<device>.in`, `disk.<device>.out` | MiB read / written since start on the devices behind the disk paths |
//! | `memory_percent` | machine memory in use, % (`(MemTotal - MemAvailable) / MemTotal`) |
//! | `proc.memory.availableMB` | machine memory available, MiB |
//! | `proc.memory.rssMB`, `proc.memory.percent` | resident set of the process, MiB and % of MemTotal |
//! | `proc.cpu.threads` | threads of the process |
//! | `disk.<path>.usagePercent`, `disk.<path>.usageGB` | used space of the file system at each disk path, % of the space usable without privilege and GiB |
//!
//! `cpu` covers the time since the previous reading (the first one: since [`SystemMonitor::new`])
//! and is left out when that window is shorter than 100 ms, which W&B matches by having no
//! `cpu` in its very first sample. Like W&B by default, only the process itself is measured
//! (not its children), and cgroup limits are not applied to the denominators.
//!
//! A resource that cannot be read (no such file, other OS, odd content, NVML absent) is
//! skipped silently: its keys are missing from the sample. Nothing here returns an error,
//! panics on what the kernel writes, or logs.
//!
//! Shutdown: nothing to stop. Dropping the monitor releases NVML (`nvmlShutdown`).

mod gpu;
mod procfs;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use cairn_proto::stats_record::StatsType;
use cairn_proto::{DiskInfo, EnvironmentRecord, MemoryInfo, StatsItem, StatsRecord};

use self::gpu::Nvidia;
use self::procfs::{DiskStat, PidStat, ProcRoots};

/// How often W&B samples system metrics (`x_stats_sampling_interval`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

/// The file system W&B reports disk usage for unless told otherwise (`x_stats_disk_paths`).
pub const DEFAULT_DISK_PATH: &str = "/";

/// The shortest wall-clock window a `cpu` value is computed over: CPU time is counted in
/// 10 ms ticks for other processes, so shorter windows would mostly be rounding noise.
const MIN_CPU_WINDOW: Duration = Duration::from_millis(100);

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = MIB * 1024.0;

/// What the monitor samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemConfig {
    /// The process whose CPU, memory and threads are reported (W&B's `x_stats_pid`); defaults
    /// to this process.
    pub pid: u32,
    /// The file systems reported as `disk.<path>.usage*`; their devices give `disk.<dev>.in|out`.
    pub disk_paths: Vec<PathBuf>,
    /// How often the owner should call [`SystemMonitor::sample`]; the monitor itself keeps no
    /// timer.
    pub interval: Duration,
    /// Whether to load NVML and report NVIDIA GPUs.
    pub gpu: bool,
}

impl Default for SystemConfig {
    fn default() -> Self {
        Self {
            pid: std::process::id(),
            disk_paths: vec![PathBuf::from(DEFAULT_DISK_PATH)],
            interval: DEFAULT_INTERVAL,
            gpu: true,
        }
    }
}

/// Samples system metrics with W&B's key names; see the module docs for the keys.
///
/// Holds the counters read at creation (network, disk IO) so later samples report the
/// amount since start, the process CPU time of the previous sample, and the NVML handle.
#[derive(Debug)]
pub struct SystemMonitor {
    config: SystemConfig,
    roots: ProcRoots,
    /// Read CPU time with `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)` (ns resolution): the
    /// monitored process is this one and `/proc` is the live one.
    own_process_clock: bool,
    /// How many CPUs 100 % of `cpu` stands for: physical cores, as W&B divides by.
    cpu_capacity: f64,
    /// Upper bound of `cpu`: all logical CPUs busy.
    cpu_max_percent: f64,
    clock_ticks_per_second: f64,
    page_size: u64,
    /// Process CPU seconds at the previous `cpu` value (or creation), and when.
    cpu_baseline: Option<(f64, Instant)>,
    /// Bytes sent and received at creation.
    network_baseline: Option<(u64, u64)>,
    tcp_retransmits_baseline: Option<u64>,
    /// The devices behind the disk paths, with their counters at creation.
    disks: Vec<DiskStat>,
    /// Whether each network interface seen so far is left out (loopback or enslaved).
    skipped_interfaces: HashMap<String, bool>,
    gpu: Option<Nvidia>,
    /// Reused to read each `/proc` file.
    buf: String,
}

impl SystemMonitor {
    /// Takes the baselines (CPU time, network and disk counters) and, if `config.gpu`, tries
    /// to load NVML. Never fails: what cannot be read now is skipped in later samples.
    pub fn new(config: SystemConfig) -> Self {
        Self::with_roots(config, ProcRoots::live())
    }

    /// [`SystemMonitor::new`] reading the given `/proc` and `/sys` trees (tests use fixtures).
    fn with_roots(config: SystemConfig, roots: ProcRoots) -> Self {
        let own_process_clock =
            cfg!(unix) && config.pid == std::process::id() && roots.proc == Path::new("/proc");
        let mut buf = String::new();
        let cpuinfo = if roots.read_proc("cpuinfo", &mut buf) {
            procfs::parse_cpuinfo(&buf)
        } else {
            procfs::CpuInfo::default()
        };
        let (physical, logical) = cpu_counts(&roots, &cpuinfo);
        let gpu = if config.gpu { Nvidia::open() } else { None };
        let mut monitor = Self {
            own_process_clock,
            cpu_capacity: f64::from(physical.max(1)),
            cpu_max_percent: 100.0 * f64::from(logical.max(physical).max(1))
                / f64::from(physical.max(1)),
            clock_ticks_per_second: clock_ticks_per_second(),
            page_size: page_size(),
            cpu_baseline: None,
            network_baseline: None,
            tcp_retransmits_baseline: None,
            disks: Vec::new(),
            skipped_interfaces: HashMap::new(),
            gpu,
            buf,
            roots,
            config,
        };
        let stat = monitor.read_pid_stat();
        monitor.cpu_baseline = monitor
            .cpu_seconds(stat.as_ref())
            .map(|s| (s, Instant::now()));
        monitor.network_baseline = monitor.read_network();
        monitor.tcp_retransmits_baseline = monitor.read_tcp_retransmits();
        monitor.disks = monitor.find_disks();
        monitor
    }

    /// The configuration the monitor was made with.
    pub fn config(&self) -> &SystemConfig {
        &self.config
    }

    /// One reading of every available metric, with W&B's key names, in W&B's order. Values
    /// are finite; keys whose source cannot be read are absent.
    pub fn sample(&mut self) -> Vec<(String, f64)> {
        let mut out = Vec::with_capacity(24);
        if let Some(gpu) = &mut self.gpu {
            gpu.sample(self.config.pid, &mut out);
        }

        let stat = self.read_pid_stat();
        self.sample_cpu(stat.as_ref(), &mut out);

        if let Some(now) = self.read_network() {
            let (sent, recv) = *self.network_baseline.get_or_insert(now);
            out.push(("network.sent".into(), now.0.saturating_sub(sent) as f64));
            out.push(("network.recv".into(), now.1.saturating_sub(recv) as f64));
        }
        if let Some(now) = self.read_tcp_retransmits() {
            let start = *self.tcp_retransmits_baseline.get_or_insert(now);
            out.push((
                "network.tcpRetransmits".into(),
                now.saturating_sub(start) as f64,
            ));
        }

        if !self.disks.is_empty() && self.roots.read_proc("diskstats", &mut self.buf) {
            let now = procfs::parse_diskstats(&self.buf);
            for start in &self.disks {
                if let Some(now) = now.iter().find(|d| d.name == start.name) {
                    let read = now.read_bytes.saturating_sub(start.read_bytes);
                    let written = now.written_bytes.saturating_sub(start.written_bytes);
                    out.push((format!("disk.{}.in", start.name), read as f64 / MIB));
                    out.push((format!("disk.{}.out", start.name), written as f64 / MIB));
                }
            }
        }

        let memory = self.read_meminfo();
        if let Some(memory) = memory {
            out.push(("memory_percent".into(), memory.used_percent()));
            out.push((
                "proc.memory.availableMB".into(),
                memory.available as f64 / MIB,
            ));
        }
        if let Some(stat) = stat {
            let rss = stat.rss_pages.saturating_mul(self.page_size) as f64;
            out.push(("proc.memory.rssMB".into(), rss / MIB));
            if let Some(memory) = memory {
                out.push((
                    "proc.memory.percent".into(),
                    rss / memory.total as f64 * 100.0,
                ));
            }
            out.push(("proc.cpu.threads".into(), stat.threads as f64));
        }

        for path in &self.config.disk_paths {
            if let Some(usage) = disk_usage(path) {
                let path = path.to_string_lossy();
                out.push((format!("disk.{path}.usagePercent"), usage.used_percent()));
                out.push((format!("disk.{path}.usageGB"), usage.used as f64 / GIB));
            }
        }

        out.retain(|(_, value)| value.is_finite());
        out
    }

    /// [`SystemMonitor::sample`] as W&B's `StatsRecord` (type `SYSTEM`, stamped `now`), each
    /// value as the JSON number W&B writes: `"0.0"`, `"4.0"`, `"14.649103128471658"`, and
    /// integers for the GPU metrics W&B keeps integral (`gpu.<i>.memory`,
    /// `gpu.<i>.memoryAllocatedBytes`). An empty `item` list means nothing could be read;
    /// W&B writes no record then, and the caller should skip it too.
    pub fn stats_record(&mut self, now: SystemTime) -> StatsRecord {
        StatsRecord {
            stats_type: StatsType::System as i32,
            timestamp: Some(now.into()),
            item: self
                .sample()
                .into_iter()
                .map(|(key, value)| StatsItem {
                    value_json: value_json(&key, value),
                    key,
                })
                .collect(),
            info: None,
        }
    }

    /// [`probe_environment`] for this monitor's disk paths, reusing its NVML handle.
    pub fn probe_environment(&self) -> EnvironmentRecord {
        probe(&self.roots, &self.config.disk_paths, self.gpu.as_ref())
    }

    fn sample_cpu(&mut self, stat: Option<&PidStat>, out: &mut Vec<(String, f64)>) {
        let Some(seconds) = self.cpu_seconds(stat) else {
            return;
        };
        let now = Instant::now();
        let Some((start_seconds, start)) = self.cpu_baseline else {
            self.cpu_baseline = Some((seconds, now));
            return;
        };
        let window = now.saturating_duration_since(start);
        if window < MIN_CPU_WINDOW {
            return; // Keep the older baseline: the next sample covers a longer window.
        }
        let busy = (seconds - start_seconds).max(0.0);
        let percent = busy / window.as_secs_f64() * 100.0 / self.cpu_capacity;
        out.push(("cpu".into(), percent.clamp(0.0, self.cpu_max_percent)));
        self.cpu_baseline = Some((seconds, now));
    }

    /// CPU seconds (user + system) the monitored process has used.
    fn cpu_seconds(&self, stat: Option<&PidStat>) -> Option<f64> {
        if self.own_process_clock
            && let Some(seconds) = own_cpu_seconds()
        {
            return Some(seconds);
        }
        stat.map(|stat| stat.cpu_ticks as f64 / self.clock_ticks_per_second)
    }

    fn read_pid_stat(&mut self) -> Option<PidStat> {
        let rel = format!("{}/stat", self.config.pid);
        self.roots
            .read_proc(&rel, &mut self.buf)
            .then(|| procfs::parse_pid_stat(&self.buf))
            .flatten()
    }

    fn read_meminfo(&mut self) -> Option<procfs::MemInfo> {
        self.roots
            .read_proc("meminfo", &mut self.buf)
            .then(|| procfs::parse_meminfo(&self.buf))
            .flatten()
    }

    /// Bytes (sent, received) over the interfaces that count, now.
    fn read_network(&mut self) -> Option<(u64, u64)> {
        if !self.roots.read_proc("net/dev", &mut self.buf) {
            return None;
        }
        let (mut sent, mut recv) = (0u64, 0u64);
        for interface in procfs::parse_net_dev(&self.buf) {
            let skip = match self.skipped_interfaces.get(&interface.name) {
                Some(skip) => *skip,
                None => {
                    let skip = self.roots.skip_interface(&interface.name);
                    self.skipped_interfaces.insert(interface.name.clone(), skip);
                    skip
                }
            };
            if !skip {
                sent = sent.saturating_add(interface.sent_bytes);
                recv = recv.saturating_add(interface.recv_bytes);
            }
        }
        Some((sent, recv))
    }

    fn read_tcp_retransmits(&mut self) -> Option<u64> {
        self.roots
            .read_proc("net/snmp", &mut self.buf)
            .then(|| procfs::parse_tcp_retransmits(&self.buf))
            .flatten()
    }

    /// The devices behind the disk paths, with their counters now.
    fn find_disks(&mut self) -> Vec<DiskStat> {
        if !self.roots.read_proc("diskstats", &mut self.buf) {
            return Vec::new();
        }
        let diskstats = procfs::parse_diskstats(&self.buf);
        let mounts = ["self/mountinfo", "1/mountinfo"]
            .into_iter()
            .find(|rel| self.roots.read_proc(rel, &mut self.buf))
            .map(|_| procfs::parse_mountinfo(&self.buf))
            .unwrap_or_default();
        let filesystems = if self.roots.read_proc("filesystems", &mut self.buf) {
            procfs::parse_filesystems(&self.buf)
        } else {
            Default::default()
        };
        let roots = &self.roots;
        procfs::disk_devices(
            &mounts,
            &filesystems,
            &self.config.disk_paths,
            &diskstats,
            |mount| roots.block_device_name(mount),
        )
        .into_iter()
        .filter_map(|name| diskstats.iter().find(|d| d.name == name).cloned())
        .collect()
    }
}

/// The facts about this machine and process that W&B puts in its environment record, for
/// the default disk path `/` and with NVIDIA GPUs when NVML loads.
///
/// Filled: `os` (`<sysname>-<release>-<machine>`, e.g. `Linux-6.1.0-x86_64`), `host`,
/// `executable` and `program` (this binary), `args` (without the program), `root` (the
/// current directory), `started_at` (now: call it when the run starts, or overwrite),
/// `cpu_count` (physical cores), `cpu_count_logical`, `cpu.model`, `memory.total`,
/// `disk["/"]` and, with a GPU, `gpu_count`, `gpu_type`, `gpu_nvidia` and `cuda_version`.
/// Python-only fields (`python`, `code_path`, `colab`…), git and `writer_id` stay empty for
/// the caller to fill.
pub fn probe_environment() -> EnvironmentRecord {
    let nvidia = Nvidia::open();
    probe(
        &ProcRoots::live(),
        &[PathBuf::from(DEFAULT_DISK_PATH)],
        nvidia.as_ref(),
    )
}

fn probe(roots: &ProcRoots, disk_paths: &[PathBuf], nvidia: Option<&Nvidia>) -> EnvironmentRecord {
    let mut env = EnvironmentRecord::default();
    let mut buf = String::new();

    let (os, host) = os_and_host();
    env.os = os;
    env.host = host;
    if let Ok(exe) = std::env::current_exe() {
        env.executable = exe.to_string_lossy().into_owned();
        env.program = env.executable.clone();
    }
    env.args = std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    if let Ok(dir) = std::env::current_dir() {
        env.root = dir.to_string_lossy().into_owned();
    }
    env.started_at = Some(SystemTime::now().into());

    let cpuinfo = if roots.read_proc("cpuinfo", &mut buf) {
        procfs::parse_cpuinfo(&buf)
    } else {
        procfs::CpuInfo::default()
    };
    let (physical, logical) = cpu_counts(roots, &cpuinfo);
    env.cpu_count = physical;
    env.cpu_count_logical = logical;
    if !cpuinfo.model.is_empty() {
        env.cpu = Some(cairn_proto::CpuInfo {
            model: cpuinfo.model,
            ..Default::default()
        });
    }
    if let Some(memory) = roots
        .read_proc("meminfo", &mut buf)
        .then(|| procfs::parse_meminfo(&buf))
        .flatten()
    {
        env.memory = Some(MemoryInfo {
            total: memory.total,
        });
    }
    for path in disk_paths {
        if let Some(usage) = disk_usage(path) {
            env.disk.insert(
                path.to_string_lossy().into_owned(),
                DiskInfo {
                    total: usage.total,
                    used: usage.used,
                },
            );
        }
    }
    if let Some(nvidia) = nvidia {
        nvidia.probe(&mut env);
    }
    env
}

/// Formats a sample value as W&B's `value_json`: serde_json's shortest round-trip form of an
/// `f64` (`0.0`, `4.0`, `2.251409166452764`), or an integer for W&B's integral GPU metrics.
fn value_json(key: &str, value: f64) -> String {
    // 2^53: every integer up to here is exact in an f64.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if gpu::is_integer_key(key) && value.fract() == 0.0 && value.abs() <= EXACT {
        return format!("{}", value as i64);
    }
    serde_json::Number::from_f64(value).map_or_else(|| "null".to_owned(), |n| n.to_string())
}

/// (physical cores, logical CPUs), each at least 1.
fn cpu_counts(roots: &ProcRoots, cpuinfo: &procfs::CpuInfo) -> (u32, u32) {
    let fallback = std::thread::available_parallelism()
        .ok()
        .and_then(|n| u32::try_from(n.get()).ok())
        .unwrap_or(1);
    let logical = Some(cpuinfo.logical).filter(|n| *n > 0).unwrap_or(fallback);
    let physical = roots
        .physical_cores()
        .filter(|n| *n > 0)
        .or(Some(cpuinfo.physical).filter(|n| *n > 0))
        .unwrap_or(logical);
    (physical, logical)
}

/// Space of the file system holding a path, in bytes.
#[derive(Debug, Clone, Copy)]
struct DiskUsage {
    total: u64,
    used: u64,
    /// Free space usable without privilege (`f_bavail`).
    available: u64,
}

impl DiskUsage {
    /// Used space as a percentage of what users can fill (`used + available`, leaving out the
    /// blocks reserved for root), as `df` and W&B compute it.
    fn used_percent(&self) -> f64 {
        match self.used.saturating_add(self.available) {
            0 => 0.0,
            capacity => self.used as f64 / capacity as f64 * 100.0,
        }
    }
}

#[cfg(unix)]
fn disk_usage(path: &Path) -> Option<DiskUsage> {
    let stat = rustix::fs::statvfs(path).ok()?;
    let block = if stat.f_frsize > 0 {
        stat.f_frsize
    } else {
        stat.f_bsize
    };
    Some(DiskUsage {
        total: stat.f_blocks.saturating_mul(block),
        used: stat
            .f_blocks
            .saturating_sub(stat.f_bfree)
            .saturating_mul(block),
        available: stat.f_bavail.saturating_mul(block),
    })
}

#[cfg(not(unix))]
fn disk_usage(_path: &Path) -> Option<DiskUsage> {
    None
}

/// CPU seconds used by this process, all threads, at nanosecond resolution.
#[cfg(unix)]
fn own_cpu_seconds() -> Option<f64> {
    let time = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Some(time.tv_sec as f64 + time.tv_nsec as f64 * 1e-9)
}

#[cfg(not(unix))]
fn own_cpu_seconds() -> Option<f64> {
    None
}

#[cfg(unix)]
fn clock_ticks_per_second() -> f64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100.0,
        ticks => ticks as f64,
    }
}

#[cfg(not(unix))]
fn clock_ticks_per_second() -> f64 {
    100.0
}

#[cfg(unix)]
fn page_size() -> u64 {
    u64::try_from(rustix::param::page_size()).unwrap_or(4096)
}

#[cfg(not(unix))]
fn page_size() -> u64 {
    4096
}

/// This machine's host name, as the environment record reports it.
pub fn hostname() -> String {
    os_and_host().1
}

/// (`<sysname>-<release>-<machine>`, host name).
#[cfg(unix)]
fn os_and_host() -> (String, String) {
    let uname = rustix::system::uname();
    let text = |s: &std::ffi::CStr| s.to_string_lossy().into_owned();
    let os = format!(
        "{}-{}-{}",
        text(uname.sysname()),
        text(uname.release()),
        text(uname.machine())
    );
    (os, text(uname.nodename()))
}

#[cfg(not(unix))]
fn os_and_host() -> (String, String) {
    let host = std::env::var("COMPUTERNAME").unwrap_or_default();
    (std::env::consts::OS.to_owned(), host)
}
