//! Tests of the system monitor: the `/proc` parsers on real, odd and truncated text, the
//! monitor on a fixture `/proc` tree (exact values), on this machine (sane values), and the
//! record format against W&B 0.31's own `stats` fixture.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::procfs::{self, DiskStat, Mount, NetDev, PidStat, ProcRoots};
use super::*;

// ===== parsers =====

/// Text no parser may panic on: empty, truncated, binary and oversized numbers.
const ODD_INPUTS: &[&str] = &[
    "",
    "\n\n\n",
    ":",
    ")",
    "(",
    " - ",
    "\\",
    "\\0",
    "\\777 - x y",
    "Tcp:",
    "Tcp: RetransSegs\n",
    "Tcp: RetransSegs\nTcp:",
    "Tcp: RetransSegs\nUdp: 1",
    "MemTotal:",
    "MemTotal: kB",
    "MemTotal: 99999999999999999999999 kB",
    "MemTotal: 18446744073709551615 kB\nMemAvailable: 18446744073709551615 kB",
    "1 (x) S",
    "1 (x) S 1 2 3 4 5 6 7 8 9 10 -11 12",
    "eth0: 1 2 3",
    "eth0:",
    " 8 0 sda",
    " 8 0 sda 1 2 3",
    "processor : x\nphysical id : -1\ncpu cores : 99999999999",
    "\u{0}\u{1}\u{ff}é ) ( : - \\12",
];

#[test]
fn parsers_never_panic_on_odd_text() {
    for text in ODD_INPUTS {
        let _ = procfs::parse_pid_stat(text);
        let _ = procfs::parse_meminfo(text);
        let _ = procfs::parse_net_dev(text);
        let _ = procfs::parse_tcp_retransmits(text);
        let _ = procfs::parse_diskstats(text);
        let _ = procfs::parse_mountinfo(text);
        let _ = procfs::parse_filesystems(text);
        let _ = procfs::parse_cpuinfo(text);
    }
    // Every prefix of real files too, as a read racing a change could see.
    for file in [
        PID_STAT, MEMINFO, NET_DEV, SNMP, DISKSTATS, MOUNTINFO, CPUINFO,
    ] {
        for end in (0..=file.len()).filter(|i| file.is_char_boundary(*i)) {
            let text = &file[..end];
            let _ = procfs::parse_pid_stat(text);
            let _ = procfs::parse_meminfo(text);
            let _ = procfs::parse_net_dev(text);
            let _ = procfs::parse_tcp_retransmits(text);
            let _ = procfs::parse_diskstats(text);
            let _ = procfs::parse_mountinfo(text);
            let _ = procfs::parse_filesystems(text);
            let _ = procfs::parse_cpuinfo(text);
        }
    }
}

const PID_STAT: &str = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 1500 0 0 0 \
     250 50 0 0 20 0 7 0 12345 1234567 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0\n";

#[test]
fn pid_stat() {
    let check = |text: &str, expect: Option<PidStat>| {
        assert_eq!(procfs::parse_pid_stat(text), expect, "{text:?}");
    };
    check(
        PID_STAT,
        Some(PidStat {
            cpu_ticks: 300,
            threads: 7,
            rss_pages: 2048,
        }),
    );
    // A name with spaces and a `)`, as `prctl(PR_SET_NAME)` allows.
    check(
        "1 (a) b) c) R 0 0 0 0 0 0 0 0 0 0 5 6 0 0 0 0 3 0 0 0 9",
        Some(PidStat {
            cpu_ticks: 11,
            threads: 3,
            rss_pages: 9,
        }),
    );
    // Negative rss counts as zero.
    check(
        "1 (a) R 0 0 0 0 0 0 0 0 0 0 5 6 0 0 0 0 3 0 0 0 -9",
        Some(PidStat {
            cpu_ticks: 11,
            threads: 3,
            rss_pages: 0,
        }),
    );
    check("1 (a) R 0 0 0 0 0 0 0 0 0 0 5 6 0 0 0 0 3 0 0 0", None); // truncated before rss
    check("1 (a) R 0 0 0 0 0 0 0 0 0 0 x 6 0 0 0 0 3 0 0 0 9", None);
    check("1 a R 0 0 0", None);
    check("", None);
}

const MEMINFO: &str = "MemTotal:       24684084 kB\nMemFree:        20000000 kB\n\
     MemAvailable:   23000000 kB\nBuffers:          100000 kB\nHugePages_Total:       0\n";

#[test]
fn meminfo() {
    let info = procfs::parse_meminfo(MEMINFO).expect("meminfo");
    assert_eq!(info.total, 24_684_084 * 1024);
    assert_eq!(info.available, 23_000_000 * 1024);
    assert_eq!(
        info.used_percent(),
        (24_684_084.0 - 23_000_000.0) / 24_684_084.0 * 100.0
    );

    // Kernels before 3.14 have no MemAvailable.
    let old = procfs::parse_meminfo(
        "MemTotal: 1000 kB\nMemFree: 100 kB\nCached: 200 kB\nSReclaimable: 50 kB\n",
    )
    .expect("old meminfo");
    assert_eq!(old.available, 350 * 1024);

    // Available never exceeds total; no total, no reading.
    let odd = procfs::parse_meminfo("MemTotal: 10 kB\nMemAvailable: 20 kB").expect("odd");
    assert_eq!(odd.available, odd.total);
    assert_eq!(odd.used_percent(), 0.0);
    assert_eq!(procfs::parse_meminfo("MemTotal: 0 kB\n"), None);
    assert_eq!(procfs::parse_meminfo("MemFree: 10 kB\n"), None);
    assert_eq!(procfs::parse_meminfo("MemTotal: 10 MB\n"), None);
}

const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
  eth0: 168524270    7385    0    0    0     0          0         0   587051    5099    0    0    0     0       0          0
eth1:12345 1 0 0 0 0 0 0 678 1 0 0 0 0 0 0
";

#[test]
fn net_dev() {
    let dev = |name: &str, recv_bytes, sent_bytes| NetDev {
        name: name.into(),
        recv_bytes,
        sent_bytes,
    };
    assert_eq!(
        procfs::parse_net_dev(NET_DEV),
        [
            dev("lo", 3193, 3193),
            dev("eth0", 168_524_270, 587_051),
            dev("eth1", 12345, 678),
        ]
    );
    // Short and non-numeric lines are dropped, the rest kept.
    assert_eq!(
        procfs::parse_net_dev("a: 1 2 3\nb: x 0 0 0 0 0 0 0 1\nc: 5 0 0 0 0 0 0 0 6"),
        [dev("c", 5, 6)]
    );
}

const SNMP: &str = "\
Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 7419
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 60 2 0 44 0 7278 5031 17 0 60 0
Udp: InDatagrams NoPorts
Udp: 5 0
";

#[test]
fn tcp_retransmits() {
    assert_eq!(procfs::parse_tcp_retransmits(SNMP), Some(17));
    assert_eq!(
        procfs::parse_tcp_retransmits("Tcp: A RetransSegs\nTcp: 1"),
        None
    );
    assert_eq!(procfs::parse_tcp_retransmits("Tcp: A B\nTcp: 1 2"), None);
    assert_eq!(procfs::parse_tcp_retransmits("Udp: A\nUdp: 1"), None);
}

const DISKSTATS: &str = "\
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   7       1 loop1 12 0 24 0 0 0 0 0 0 4 0
 254       0 vda 198247 24757 8801474 403357 12909 50954 10292088 45087 0 22940 449929 7304 24 1464264 1462 344 22
 254       1 vda1 10 0 2 0 1 0 4 0 0 0 0
 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
";

#[test]
fn diskstats() {
    let stat = |name: &str, read_bytes, written_bytes| DiskStat {
        name: name.into(),
        read_bytes,
        written_bytes,
    };
    assert_eq!(
        procfs::parse_diskstats(DISKSTATS),
        [
            stat("loop1", 24 * 512, 0),
            stat("vda", 8_801_474 * 512, 10_292_088 * 512),
            stat("vda1", 1024, 2048),
        ]
    );
    // Old 14-field lines parse; shorter ones and non-numbers do not.
    assert_eq!(
        procfs::parse_diskstats("8 0 sda 1 0 2 0 1 0 4 0 0 0 0\n8 1 sdb 1 0 2 0\n"),
        [stat("sda", 1024, 2048)]
    );
    assert_eq!(procfs::parse_diskstats("8 0 sda 1 0 x 0 1 0 4 0 0 0 0"), []);
}

const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
28 27 0:25 / /mnt/with\\040space ro - tmpfs none ro
29 27 254:0 /srv/data /data rw shared:5 - ext4 /dev/vda rw
30 27 8:17 / /scratch rw - xfs /dev/sdb1 rw
31 27 0:40 /@home /home rw - btrfs /dev/sdc2 rw,subvol=/@home
";

#[test]
fn mountinfo() {
    let mounts = procfs::parse_mountinfo(MOUNTINFO);
    assert_eq!(mounts.len(), 6);
    assert_eq!(
        mounts[1],
        Mount {
            device_id: "254:0".into(),
            root: "/".into(),
            mount_point: "/".into(),
            fstype: "ext4".into(),
            source: "/dev/vda".into(),
            super_options: "rw,discard".into(),
        }
    );
    assert_eq!(mounts[2].mount_point, "/mnt/with space");
    // Optional fields (`shared:5`) sit before the separator.
    assert_eq!(mounts[3].fstype, "ext4");
    assert_eq!(mounts[3].root, "/srv/data");
    // Lines without the separator or with too few fields are dropped.
    assert_eq!(procfs::parse_mountinfo("1 2 3:4 / / rw - ext4"), []);
    assert_eq!(procfs::parse_mountinfo("1 2 3:4 / - ext4 /dev/x"), []);
    // Escapes that are not three octal digits stay as written.
    let odd = procfs::parse_mountinfo("1 2 3:4 / /a\\9b\\1 rw - ext4 /dev/x");
    assert_eq!(odd[0].mount_point, "/a\\9b\\1");
}

#[test]
fn filesystems() {
    let real = procfs::parse_filesystems("nodev\tsysfs\nnodev\tproc\n\text4\n\txfs\nnodev\tzfs\n");
    assert_eq!(real.into_iter().collect::<Vec<_>>(), ["ext4", "xfs", "zfs"]);
}

#[test]
fn disk_devices_follow_the_mounts() {
    let mounts = procfs::parse_mountinfo(MOUNTINFO);
    let real = procfs::parse_filesystems("\text4\n\txfs\n\tbtrfs\n");
    let stats = procfs::parse_diskstats(
        "254 0 vda 1 0 2 0 1 0 4 0 0 0 0\n8 17 sdb1 1 0 2 0 1 0 4 0 0 0 0\n\
         8 34 sdc2 1 0 2 0 1 0 4 0 0 0 0\n7 0 loop0 1 0 2 0 1 0 4 0 0 0 0\n",
    );
    let name = |m: &Mount| m.source.trim_start_matches("/dev/").to_owned();
    let devices = |paths: &[&str], mounts: &[Mount]| {
        let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        procfs::disk_devices(mounts, &real, &paths, &stats, name)
    };
    assert_eq!(devices(&["/"], &mounts), ["vda"]);
    assert_eq!(devices(&["/scratch/x"], &mounts), ["sdb1", "vda"]);
    // A btrfs subvolume is not a bind mount.
    assert_eq!(devices(&["/home"], &mounts), ["sdc2", "vda"]);
    // Overlay root (a container): every real mounted device stands in for `/`.
    let container = procfs::parse_mountinfo(
        "1 0 0:40 / / rw - overlay overlay rw\n2 1 8:17 / /etc/hosts rw - xfs /dev/sdb1 rw\n",
    );
    assert_eq!(devices(&["/"], &container), ["sdb1"]);
    // Nothing matches: every non-pseudo device with IO.
    assert_eq!(devices(&["/"], &[]), ["sdb1", "sdc2", "vda"]);
}

const CPUINFO: &str = "\
processor\t: 0
model name\t: AMD EPYC
physical id\t: 0
cpu cores\t: 2

processor\t: 1
model name\t: AMD EPYC
physical id\t: 0
cpu cores\t: 2

processor\t: 2
model name\t: AMD EPYC
physical id\t: 1
cpu cores\t: 2
";

#[test]
fn cpuinfo() {
    assert_eq!(
        procfs::parse_cpuinfo(CPUINFO),
        procfs::CpuInfo {
            logical: 3,
            physical: 4,
            model: "AMD EPYC".into(),
        }
    );
    // ARM: no model name, no packages.
    let arm = procfs::parse_cpuinfo("processor : 0\nBogoMIPS : 50\n\nprocessor : 1\n");
    assert_eq!((arm.logical, arm.physical, arm.model.as_str()), (2, 0, ""));
}

// ===== the monitor on a fixture tree =====

/// A fake `/proc` + `/sys` under a temporary directory.
struct Tree(tempfile::TempDir);

impl Tree {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.0.path().join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }

    fn roots(&self) -> ProcRoots {
        ProcRoots {
            proc: self.0.path().join("proc"),
            sys: self.0.path().join("sys"),
        }
    }

    fn stat(&self, ticks: u64, threads: u64, rss_pages: u64) {
        self.write(
            "proc/4242/stat",
            &format!(
                "4242 (x) S 1 1 1 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 {threads} 0 1 1 {rss_pages}"
            ),
        );
    }

    fn counters(&self, eth0: (u64, u64), retrans: u64, vda: (u64, u64)) {
        self.write(
            "proc/net/dev",
            &format!(
                "h\nh\n lo: 50 1 0 0 0 0 0 0 50 1 0 0 0 0 0 0\n\
                 eth0: {} 1 0 0 0 0 0 0 {} 1 0 0 0 0 0 0\n\
                 br0: 7 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0\n\
                 veth1: 9 1 0 0 0 0 0 0 9 1 0 0 0 0 0 0\n",
                eth0.0, eth0.1
            ),
        );
        self.write(
            "proc/net/snmp",
            &format!("Tcp: RtoMin RetransSegs\nTcp: 200 {retrans}\n"),
        );
        self.write(
            "proc/diskstats",
            &format!(
                " 7 0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n\
                 254 0 vda 1 0 {} 0 1 0 {} 0 0 0 0\n",
                vda.0, vda.1
            ),
        );
    }
}

fn fixture_tree() -> Tree {
    let tree = Tree::new();
    tree.write("proc/cpuinfo", CPUINFO);
    for cpu in 0..4 {
        // Two cores of two threads each.
        tree.write(
            &format!("sys/devices/system/cpu/cpu{cpu}/topology/core_cpus_list"),
            if cpu % 2 == 0 { "0,2\n" } else { "1,3\n" },
        );
    }
    tree.write(
        "proc/meminfo",
        "MemTotal: 4194304 kB\nMemFree: 1 kB\nMemAvailable: 3145728 kB\n",
    );
    tree.write("proc/filesystems", "nodev\tproc\n\text4\n");
    tree.write(
        "proc/self/mountinfo",
        "27 1 254:0 / / rw - ext4 /dev/vda rw\n",
    );
    tree.write("sys/class/net/lo/flags", "0x9\n");
    tree.write("sys/class/net/eth0/flags", "0x1003\n");
    tree.write("sys/class/net/veth1/master", "");
    tree.stat(1000, 5, 256);
    tree.counters((1000, 2000), 3, (10, 20));
    tree
}

fn value(sample: &[(String, f64)], key: &str) -> Option<f64> {
    sample.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

fn keys(sample: &[(String, f64)]) -> Vec<&str> {
    sample.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn fixture_tree_gives_exact_values() {
    let tree = fixture_tree();
    let config = SystemConfig {
        pid: 4242,
        gpu: false,
        ..SystemConfig::default()
    };
    let mut monitor = SystemMonitor::with_roots(config, tree.roots());
    let first = monitor.sample();
    // No `cpu` yet: less than 100 ms since creation.
    assert_eq!(
        keys(&first),
        [
            "network.sent",
            "network.recv",
            "network.tcpRetransmits",
            "disk.vda.in",
            "disk.vda.out",
            "memory_percent",
            "proc.memory.availableMB",
            "proc.memory.rssMB",
            "proc.memory.percent",
            "proc.cpu.threads",
            "disk./.usagePercent",
            "disk./.usageGB",
        ]
    );
    assert_eq!(value(&first, "network.sent"), Some(0.0));
    assert_eq!(value(&first, "disk.vda.out"), Some(0.0));
    assert_eq!(value(&first, "memory_percent"), Some(25.0));
    assert_eq!(value(&first, "proc.memory.availableMB"), Some(3072.0));
    let rss_mb = 256.0 * page_size() as f64 / MIB;
    assert_eq!(value(&first, "proc.memory.rssMB"), Some(rss_mb));
    assert_eq!(
        value(&first, "proc.memory.percent"),
        Some(rss_mb / 4096.0 * 100.0)
    );
    assert_eq!(value(&first, "proc.cpu.threads"), Some(5.0));

    // One tick (10 ms) of CPU over at least 150 ms, on two physical cores.
    std::thread::sleep(Duration::from_millis(150));
    tree.stat(1001, 6, 512);
    tree.counters((1000 + 4096, 2000 + 1024), 10, (10 + 2048, 20 + 4096));
    let started = Instant::now();
    let second = monitor.sample();
    let cpu = value(&second, "cpu").expect("cpu after 150 ms");
    let upper = 0.01 / 0.15 * 100.0 / 2.0;
    let lower = 0.01 / (0.15 + started.elapsed().as_secs_f64() + 5.0) * 100.0 / 2.0;
    assert!(
        cpu > lower && cpu <= upper,
        "cpu {cpu} not in ({lower}, {upper}]"
    );
    assert_eq!(keys(&second)[0], "cpu");
    // eth0 only: loopback, the bridge-less `br0` without flags counts, `veth1` has a master.
    assert_eq!(value(&second, "network.sent"), Some(1024.0));
    assert_eq!(value(&second, "network.recv"), Some(4096.0));
    assert_eq!(value(&second, "network.tcpRetransmits"), Some(7.0));
    assert_eq!(value(&second, "disk.vda.in"), Some(1.0));
    assert_eq!(value(&second, "disk.vda.out"), Some(2.0));
    assert_eq!(value(&second, "proc.cpu.threads"), Some(6.0));
    assert_eq!(value(&second, "proc.memory.rssMB"), Some(2.0 * rss_mb));

    // Counters going backwards (a wrapped or reset counter) read as zero, not negative.
    tree.counters((0, 0), 0, (0, 0));
    let third = monitor.sample();
    assert_eq!(value(&third, "network.sent"), Some(0.0));
    assert_eq!(value(&third, "disk.vda.in"), Some(0.0));
}

#[test]
fn missing_files_skip_their_keys() {
    let tree = Tree::new();
    let config = SystemConfig {
        pid: 4242,
        disk_paths: vec![PathBuf::from("/no/such/cairn/path")],
        gpu: false,
        ..SystemConfig::default()
    };
    let mut monitor = SystemMonitor::with_roots(config, tree.roots());
    assert_eq!(monitor.sample(), []);
    let record = monitor.stats_record(SystemTime::UNIX_EPOCH);
    assert!(record.item.is_empty());
    // Files that appear later are picked up, with their first reading as the baseline.
    tree.counters((5, 6), 1, (1, 1));
    let sample = monitor.sample();
    assert_eq!(value(&sample, "network.sent"), Some(0.0));
    assert_eq!(value(&sample, "network.tcpRetransmits"), Some(0.0));
}

// ===== the monitor on this machine =====

fn no_gpu_here() -> bool {
    gpu::Nvidia::open().is_none()
}

#[test]
fn live_sample_is_sane() {
    let mut monitor = SystemMonitor::new(SystemConfig::default());
    std::thread::sleep(MIN_CPU_WINDOW + Duration::from_millis(20));
    let sample = monitor.sample();
    let get = |key: &str| value(&sample, key).unwrap_or_else(|| panic!("no {key}"));

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    assert!((0.0..=100.0 * cores).contains(&get("cpu")));
    assert!(get("proc.memory.rssMB") > 0.0);
    assert!(get("proc.memory.percent") > 0.0);
    assert!(get("proc.cpu.threads") >= 1.0);
    let memory = get("memory_percent");
    assert!(memory > 0.0 && memory <= 100.0, "memory_percent {memory}");
    assert!(get("proc.memory.availableMB") > 0.0);
    assert!((0.0..=100.0).contains(&get("disk./.usagePercent")));
    assert!(get("disk./.usageGB") > 0.0);
    assert!(get("network.sent") >= 0.0);
    assert!(get("network.recv") >= 0.0);
    if no_gpu_here() {
        assert!(!sample.iter().any(|(k, _)| k.starts_with("gpu.")));
    }
    assert!(sample.iter().all(|(_, v)| v.is_finite()));
}

#[test]
fn busy_loop_raises_cpu() {
    use rustix::time::{ClockId, clock_gettime};
    let thread_seconds = || {
        let t = clock_gettime(ClockId::ThreadCPUTime);
        t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
    };
    let config = SystemConfig {
        gpu: false,
        ..SystemConfig::default()
    };
    let mut monitor = SystemMonitor::new(config);
    let capacity = monitor.cpu_capacity;

    std::thread::sleep(MIN_CPU_WINDOW);
    let before_first = Instant::now();
    let _ = monitor.sample();
    let spin_start = thread_seconds();
    // Spin until this thread alone used 300 ms of CPU (or 5 s passed on a loaded machine).
    let mut x = 0u64;
    while thread_seconds() - spin_start < 0.3 && before_first.elapsed() < Duration::from_secs(5) {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    let spun = thread_seconds() - spin_start;
    let busy = monitor.sample();
    let window = before_first.elapsed().as_secs_f64();

    // The process used at least this thread's CPU time over at most `window`.
    let floor = spun / window * 100.0 / capacity;
    let cpu = value(&busy, "cpu").expect("cpu");
    assert!(cpu > 0.0);
    assert!(
        cpu >= floor * 0.999,
        "cpu {cpu} below this thread's share {floor}"
    );
}

#[test]
fn monitor_can_move_to_the_pipeline_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<SystemMonitor>();
}

#[test]
fn stats_record_is_a_system_record_of_numbers() {
    let mut monitor = SystemMonitor::new(SystemConfig {
        gpu: false,
        ..SystemConfig::default()
    });
    let now = SystemTime::UNIX_EPOCH + Duration::new(1_795_000_000, 417_299_535);
    let record = monitor.stats_record(now);
    assert_eq!(record.stats_type, StatsType::System as i32);
    let timestamp = record.timestamp.expect("timestamp");
    assert_eq!(
        (timestamp.seconds, timestamp.nanos),
        (1_795_000_000, 417_299_535)
    );
    assert!(!record.item.is_empty());
    for item in &record.item {
        let parsed: serde_json::Value =
            serde_json::from_str(&item.value_json).expect("value_json is JSON");
        assert!(parsed.is_number(), "{} = {}", item.key, item.value_json);
    }
}

#[test]
fn value_json_is_formatted_like_wandb() {
    let check = |key: &str, value: f64, expect: &str| {
        assert_eq!(value_json(key, value), expect, "{key} = {value}");
    };
    check("network.sent", 0.0, "0.0");
    check("proc.cpu.threads", 4.0, "4.0");
    check("memory_percent", 2.251409166452764, "2.251409166452764");
    check("disk./.usageGB", 13.3118896484375, "13.3118896484375");
    check("cpu", 4.390244007110596, "4.390244007110596");
    check("network.recv", 123456789.0, "123456789.0");
    check("gpu.0.memory", 37.0, "37");
    check("gpu.12.memoryAllocatedBytes", 1073741824.0, "1073741824");
    check("gpu.process.1.memory", 5.0, "5");
    check("gpu.0.memoryAllocated", 12.0, "12.0");
    check("gpu.0.temp", 61.0, "61.0");
    check("gpu.x.memory", 5.0, "5.0");
    check("gpu.0.memory", 0.5, "0.5");
}

/// The `stats` run of W&B 0.31 on a machine like this one.
fn wandb_stats_fixture() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/wandb-0.31/stats/wandb");
    let run = fs::read_dir(&dir)
        .expect("stats fixture")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("run-stats001.records.jsonl").exists())
        .expect("stats run folder");
    let text = fs::read_to_string(run.join("run-stats001.records.jsonl")).expect("records");
    let mut items = Vec::new();
    for line in text.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("json line");
        let Some(stats) = record.get("stats") else {
            continue;
        };
        for item in stats["item"].as_array().expect("items") {
            items.push((
                item["key"].as_str().expect("key").to_owned(),
                item["value_json"].as_str().expect("value_json").to_owned(),
            ));
        }
    }
    assert!(!items.is_empty());
    items
}

/// `disk.vda.in` → `disk.<dev>.in`: device names differ between machines.
fn key_shape(key: &str) -> String {
    match key.strip_prefix("disk.").and_then(|k| k.rsplit_once('.')) {
        Some((device, end @ ("in" | "out"))) if !device.starts_with('/') => {
            format!("disk.<dev>.{end}")
        }
        _ => key.to_owned(),
    }
}

#[test]
fn keys_and_values_match_the_wandb_fixture() {
    let fixture = wandb_stats_fixture();

    // Our formatting reproduces every value W&B wrote.
    for (key, json) in &fixture {
        let value: f64 = json.parse().expect("number");
        assert_eq!(&value_json(key, value), json, "{key}");
    }

    // The same keys as W&B on this kind of machine (device names aside), in the same order.
    let expected: Vec<String> = {
        let mut seen = BTreeSet::new();
        let mut all: Vec<(usize, String)> = Vec::new();
        for (i, (key, _)) in fixture.iter().enumerate() {
            if seen.insert(key.clone()) {
                all.push((i, key.clone()));
            }
        }
        all.into_iter().map(|(_, k)| key_shape(&k)).collect()
    };
    let mut monitor = SystemMonitor::new(SystemConfig {
        gpu: false,
        ..SystemConfig::default()
    });
    std::thread::sleep(MIN_CPU_WINDOW);
    let ours: Vec<String> = monitor.sample().iter().map(|(k, _)| key_shape(k)).collect();
    let ours_set: BTreeSet<&String> = ours.iter().collect();
    let expected_set: BTreeSet<&String> = expected.iter().collect();
    assert!(
        ours_set.is_subset(&expected_set),
        "keys W&B does not write: {:?}",
        ours_set.difference(&expected_set).collect::<Vec<_>>()
    );
    for key in &expected {
        if key.starts_with("disk.<dev>") || key == "network.tcpRetransmits" {
            continue; // depends on the machine's devices and on /proc/net/snmp
        }
        assert!(ours_set.contains(key), "missing {key}");
    }
    // W&B's order, `cpu` first (it is missing from W&B's first sample, so it comes later in
    // the fixture's list of first appearances).
    let fixture_order =
        std::iter::once("cpu".to_owned()).chain(expected.iter().filter(|k| *k != "cpu").cloned());
    let ours_in_fixture_order: Vec<String> =
        fixture_order.filter(|k| ours_set.contains(k)).collect();
    assert_eq!(ours, ours_in_fixture_order);
}

#[test]
fn probe_environment_fills_the_machine_facts() {
    let env = probe_environment();
    assert!(env.cpu_count >= 1);
    assert!(env.cpu_count_logical >= env.cpu_count);
    let memory = env.memory.expect("memory");
    assert!(memory.total > 0);
    let root = env.disk.get("/").expect("disk /");
    assert!(root.total > 0 && root.used <= root.total);
    assert!(!env.os.is_empty());
    assert!(!env.host.is_empty());
    assert!(!env.executable.is_empty());
    assert!(!env.root.is_empty());
    assert!(env.started_at.is_some());
    assert!(env.python.is_empty());
    if no_gpu_here() {
        assert_eq!(env.gpu_count, 0);
        assert!(env.gpu_nvidia.is_empty());
    }

    let monitor = SystemMonitor::new(SystemConfig {
        gpu: false,
        ..SystemConfig::default()
    });
    let from_monitor = monitor.probe_environment();
    assert_eq!(from_monitor.cpu_count, env.cpu_count);
    assert_eq!(from_monitor.memory, env.memory);
}
