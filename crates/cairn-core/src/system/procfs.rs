//! Parsers for the Linux `/proc` and `/sys` files the system monitor reads.
//!
//! Input: the text of one file (`/proc/<pid>/stat`, `/proc/meminfo`, `/proc/net/dev`,
//! `/proc/net/snmp`, `/proc/diskstats`, `/proc/<pid>/mountinfo`, `/proc/filesystems`,
//! `/proc/cpuinfo`). Output: the few numbers the monitor needs, or `None` / an empty list when
//! the text does not have them. Every function is pure, total and panic-free on any input
//! (truncated files, missing columns, non-numbers, odd bytes): a kernel that formats a file
//! differently costs the keys that file feeds, never the sample.
//!
//! The file reading itself ([`ProcRoots`]) takes the `/proc` and `/sys` roots as paths so the
//! tests can point it at a fixture tree. No state, nothing to shut down.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// Bytes per sector in `/proc/diskstats`, whatever the device's real sector size.
const DISKSTATS_SECTOR: u64 = 512;

/// `IFF_LOOPBACK` in `/sys/class/net/<if>/flags`.
const IFF_LOOPBACK: u64 = 0x8;

/// Where the procfs and sysfs trees are mounted (`/proc` and `/sys` on a live system).
#[derive(Debug, Clone)]
pub(crate) struct ProcRoots {
    pub(crate) proc: PathBuf,
    pub(crate) sys: PathBuf,
}

impl ProcRoots {
    /// The live system's trees.
    pub(crate) fn live() -> Self {
        Self {
            proc: PathBuf::from("/proc"),
            sys: PathBuf::from("/sys"),
        }
    }

    /// Reads `/proc/<rel>` into `buf` (cleared first); false when it cannot be read.
    pub(crate) fn read_proc(&self, rel: &str, buf: &mut String) -> bool {
        read_into(&self.proc.join(rel), buf)
    }

    /// Whether a network interface is loopback or enslaved to a bond, bridge or team (its
    /// traffic is then counted on the master or not at all), from `/sys/class/net/<name>`.
    pub(crate) fn skip_interface(&self, name: &str) -> bool {
        if name == "lo" {
            return true;
        }
        let dir = self.sys.join("class/net").join(name);
        let loopback = fs::read_to_string(dir.join("flags"))
            .ok()
            .and_then(|flags| parse_hex(flags.trim()))
            .is_some_and(|flags| flags & IFF_LOOPBACK != 0);
        loopback || dir.join("master").exists()
    }

    /// The number of distinct physical cores in `/sys/devices/system/cpu/cpu*/topology`.
    pub(crate) fn physical_cores(&self) -> Option<u32> {
        let entries = fs::read_dir(self.sys.join("devices/system/cpu")).ok()?;
        let cpus: Vec<PathBuf> = entries
            .flatten()
            .filter(|entry| {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                name.strip_prefix("cpu")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|entry| entry.path().join("topology"))
            .collect();
        // Each core lists the same sibling set in every one of its threads.
        for file in ["core_cpus_list", "thread_siblings_list"] {
            let cores: BTreeSet<String> = cpus
                .iter()
                .filter_map(|topology| fs::read_to_string(topology.join(file)).ok())
                .map(|text| text.trim().to_owned())
                .filter(|text| !text.is_empty())
                .collect();
            if !cores.is_empty() {
                return u32::try_from(cores.len()).ok();
            }
        }
        None
    }

    /// The kernel name of the block device behind a mount source, as `/proc/diskstats` spells
    /// it: `/dev/vda1` → `vda1`, `/dev/mapper/x` → `dm-0`, `/dev/root` → its real name.
    pub(crate) fn block_device_name(&self, mount: &Mount) -> String {
        let source = mount.source.as_str();
        if source.starts_with("/dev/mapper/")
            && let Ok(real) = fs::canonicalize(source)
            && let Some(name) = real.file_name()
        {
            return name.to_string_lossy().into_owned();
        }
        if source == "/dev/root"
            && let Ok(link) = fs::read_link(self.sys.join("dev/block").join(&mount.device_id))
            && let Some(name) = link.file_name()
        {
            return name.to_string_lossy().into_owned();
        }
        source.strip_prefix("/dev/").unwrap_or(source).to_owned()
    }
}

/// Reads a whole file into `buf` (cleared first); false when it cannot be read.
fn read_into(path: &Path, buf: &mut String) -> bool {
    use std::io::Read;
    buf.clear();
    match fs::File::open(path) {
        Ok(mut file) => file.read_to_string(buf).is_ok(),
        Err(_) => false,
    }
}

fn parse_hex(text: &str) -> Option<u64> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    u64::from_str_radix(digits, 16).ok()
}

// ===== /proc/<pid>/stat =====

/// The fields of `/proc/<pid>/stat` the monitor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PidStat {
    /// User plus system CPU time, in clock ticks.
    pub(crate) cpu_ticks: u64,
    /// Number of threads.
    pub(crate) threads: u64,
    /// Resident set size, in pages.
    pub(crate) rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) sits in parentheses and may itself
/// contain spaces and parentheses, so the numbered fields are counted after its last `)`.
pub(crate) fn parse_pid_stat(text: &str) -> Option<PidStat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state) of proc(5).
    let field = |n: usize| -> Option<&str> { fields.get(n.checked_sub(3)?).copied() };
    let unsigned = |n: usize| field(n)?.parse::<u64>().ok();
    let utime = unsigned(14)?;
    let stime = unsigned(15)?;
    let threads = unsigned(20)?;
    // rss is a signed long; a negative value (never seen, but possible) counts as zero.
    let rss_pages = field(24)?.parse::<i64>().ok()?.max(0).unsigned_abs();
    Some(PidStat {
        cpu_ticks: utime.saturating_add(stime),
        threads,
        rss_pages,
    })
}

// ===== /proc/meminfo =====

/// System memory from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemInfo {
    pub(crate) total: u64,
    pub(crate) available: u64,
}

impl MemInfo {
    /// Memory in use as a percentage of the total: `(total - available) / total`.
    pub(crate) fn used_percent(&self) -> f64 {
        self.total.saturating_sub(self.available) as f64 / self.total as f64 * 100.0
    }
}

/// Parses `/proc/meminfo`; `None` without a positive `MemTotal`. Uses the kernel's
/// `MemAvailable` estimate, or `MemFree + Cached + SReclaimable` on kernels before 3.14.
pub(crate) fn parse_meminfo(text: &str) -> Option<MemInfo> {
    let mut values: HashMap<&str, u64> = HashMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let mut words = value.split_whitespace();
        let Some(Ok(number)) = words.next().map(str::parse::<u64>) else {
            continue;
        };
        let bytes = match words.next() {
            Some("kB") => number.saturating_mul(1024),
            Some(_) => continue,
            None => number, // unit-less counts such as HugePages_Total
        };
        values.insert(key.trim(), bytes);
    }
    let total = values.get("MemTotal").copied().filter(|t| *t > 0)?;
    let value = |key: &str| values.get(key).copied().unwrap_or(0);
    let available = values.get("MemAvailable").copied().unwrap_or_else(|| {
        value("MemFree")
            .saturating_add(value("Cached"))
            .saturating_add(value("SReclaimable"))
    });
    Some(MemInfo {
        total,
        available: available.min(total),
    })
}

// ===== /proc/net/dev =====

/// One interface of `/proc/net/dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NetDev {
    pub(crate) name: String,
    pub(crate) recv_bytes: u64,
    pub(crate) sent_bytes: u64,
}

/// Parses `/proc/net/dev`: the two header lines have no `:`-separated counters and are
/// skipped like any other line without at least nine numbers.
pub(crate) fn parse_net_dev(text: &str) -> Vec<NetDev> {
    text.lines()
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let name = name.trim();
            let counters: Vec<&str> = counters.split_whitespace().collect();
            if name.is_empty() || name.contains('|') {
                return None;
            }
            Some(NetDev {
                name: name.to_owned(),
                recv_bytes: counters.first()?.parse().ok()?,
                sent_bytes: counters.get(8)?.parse().ok()?,
            })
        })
        .collect()
}

// ===== /proc/net/snmp =====

/// The `RetransSegs` counter of the `Tcp:` table of `/proc/net/snmp` (a header line of names
/// followed by a line of values).
pub(crate) fn parse_tcp_retransmits(text: &str) -> Option<u64> {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(names) = line.strip_prefix("Tcp:") else {
            continue;
        };
        let values = lines.next()?.strip_prefix("Tcp:")?;
        let index = names.split_whitespace().position(|n| n == "RetransSegs")?;
        return values.split_whitespace().nth(index)?.parse().ok();
    }
    None
}

// ===== /proc/diskstats =====

/// Bytes read and written by one block device since boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiskStat {
    pub(crate) name: String,
    pub(crate) read_bytes: u64,
    pub(crate) written_bytes: u64,
}

/// Parses `/proc/diskstats`, leaving out devices that never did any IO (unused loop, ram and
/// zram devices), as W&B does.
pub(crate) fn parse_diskstats(text: &str) -> Vec<DiskStat> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let counters = fields.get(3..14)?;
            if counters.iter().all(|c| *c == "0") {
                return None;
            }
            let sectors = |i: usize| fields.get(i)?.parse::<u64>().ok();
            Some(DiskStat {
                name: (*fields.get(2)?).to_owned(),
                read_bytes: sectors(5)?.saturating_mul(DISKSTATS_SECTOR),
                written_bytes: sectors(9)?.saturating_mul(DISKSTATS_SECTOR),
            })
        })
        .collect()
}

// ===== /proc/<pid>/mountinfo and /proc/filesystems =====

/// One line of a `mountinfo` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// `major:minor` of the file system.
    pub(crate) device_id: String,
    /// The directory of the file system mounted here (not `/` for bind mounts).
    pub(crate) root: String,
    /// Where it is mounted, with the kernel's octal escapes undone.
    pub(crate) mount_point: String,
    pub(crate) fstype: String,
    /// The mount source, usually a device path such as `/dev/vda`.
    pub(crate) source: String,
    pub(crate) super_options: String,
}

impl Mount {
    /// A bind mount of a directory of another mount (counted there), except for a btrfs
    /// subvolume, whose root is also not `/`.
    fn is_bind(&self) -> bool {
        let subvolume = self
            .super_options
            .split(',')
            .filter_map(|opt| opt.strip_prefix("subvol="))
            .any(|subvol| subvol == self.root);
        self.root != "/" && !subvolume
    }
}

/// Parses a `mountinfo` file: `id parent major:minor root mount-point options [optional…] -
/// fstype source super-options`.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (mount, filesystem) = line.split_once(" - ")?;
            let mount: Vec<&str> = mount.split_whitespace().collect();
            let mut filesystem = filesystem.split_whitespace();
            Some(Mount {
                device_id: (*mount.get(2)?).to_owned(),
                root: unescape_octal(mount.get(3)?),
                mount_point: unescape_octal(mount.get(4)?),
                fstype: filesystem.next()?.to_owned(),
                source: filesystem.next()?.to_owned(),
                super_options: filesystem.next().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

/// Undoes the `\ooo` escapes the kernel writes for spaces, tabs, newlines and backslashes.
fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'\\')
            .then(|| bytes.get(i + 1..i + 4))
            .flatten()
            .filter(|digits| digits.iter().all(|d| (b'0'..=b'7').contains(d)))
            .and_then(|digits| {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                u8::try_from(value).ok()
            });
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/filesystems` into the types backed by a block device (lines without
/// `nodev`), plus zfs, which is `nodev` but holds real disks.
pub(crate) fn parse_filesystems(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [fstype] => Some(fstype.to_owned()),
                ["nodev", "zfs"] => Some("zfs".to_owned()),
                _ => None,
            },
        )
        .collect()
}

/// The block devices whose IO counts for `paths`: the devices of the real file systems
/// mounted at a parent of a path. When `/` is asked for alone and is not a real file system
/// (a container's overlay root), every real mounted device stands in for it. Devices missing
/// from `diskstats` are dropped; if none is left, every non-pseudo device in `diskstats` is
/// watched. Sorted, without duplicates.
pub(crate) fn disk_devices(
    mounts: &[Mount],
    real_filesystems: &BTreeSet<String>,
    paths: &[PathBuf],
    diskstats: &[DiskStat],
    device_name: impl Fn(&Mount) -> String,
) -> Vec<String> {
    let real: Vec<&Mount> = mounts
        .iter()
        .filter(|m| real_filesystems.contains(&m.fstype) && !m.is_bind())
        .collect();
    let mut devices = BTreeSet::new();
    for mount in &real {
        if paths.iter().any(|p| p.starts_with(&mount.mount_point)) {
            devices.insert(device_name(mount));
        }
    }
    let root_is_real = real.iter().any(|m| m.mount_point == "/");
    if !root_is_real && paths.len() == 1 && paths[0] == Path::new("/") {
        devices.extend(
            real.iter()
                .map(|m| device_name(m))
                .filter(|d| !pseudo_device(d)),
        );
    }
    devices.retain(|d| diskstats.iter().any(|s| s.name == *d));
    if devices.is_empty() {
        devices.extend(
            diskstats
                .iter()
                .map(|s| s.name.clone())
                .filter(|d| !pseudo_device(d)),
        );
    }
    devices.into_iter().collect()
}

fn pseudo_device(name: &str) -> bool {
    ["loop", "ram", "zram"].iter().any(|p| name.starts_with(p))
}

// ===== /proc/cpuinfo =====

/// What `/proc/cpuinfo` says about the CPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CpuInfo {
    /// Number of `processor` entries (logical CPUs).
    pub(crate) logical: u32,
    /// Sum of `cpu cores` over distinct `physical id`s; 0 when the file does not say (ARM).
    pub(crate) physical: u32,
    /// The first `model name`, if any.
    pub(crate) model: String,
}

/// Parses `/proc/cpuinfo`: blank-line separated blocks of `key : value` lines.
pub(crate) fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    let mut cores_by_package: HashMap<u64, u32> = HashMap::new();
    let (mut package, mut cores) = (None, None);
    for line in text.lines().chain(std::iter::once("")) {
        let Some((key, value)) = line.split_once(':') else {
            if line.trim().is_empty()
                && let (Some(package), Some(cores)) = (package.take(), cores.take())
            {
                cores_by_package.insert(package, cores);
            }
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" if value.parse::<u32>().is_ok() => {
                info.logical = info.logical.saturating_add(1);
            }
            "model name" if info.model.is_empty() => info.model = value.to_owned(),
            "physical id" => package = value.parse().ok(),
            "cpu cores" => cores = value.parse().ok(),
            _ => {}
        }
    }
    info.physical = cores_by_package
        .values()
        .fold(0u32, |sum, c| sum.saturating_add(*c));
    info
}
