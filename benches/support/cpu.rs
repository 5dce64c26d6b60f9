//! CPU time of processes, read from `/proc`: the figure a benchmark on a shared machine
//! can still compare, where rates and latencies move with everything else running.

use std::time::Duration;

/// CPU time (user + system) a process has used so far, from `/proc/{pid}/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |index: usize| fields.get(index).and_then(|v| v.parse::<u64>().ok());
    let (Some(user), Some(system)) = (ticks(11), ticks(12)) else {
        return Duration::ZERO;
    };
    Duration::from_micros((user + system) * 1_000_000 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let output = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .expect("running getconf CLK_TCK");
        let text = String::from_utf8_lossy(&output.stdout);
        text.trim()
            .parse()
            .expect("getconf CLK_TCK prints a number")
    })
}

/// CPU used by the sender and the receiver between [`CpuMeter::start`] and `stop`.
pub struct CpuMeter {
    sender: u32,
    receiver: u32,
    at_start: (Duration, Duration),
}

impl CpuMeter {
    pub fn start(sender: u32, receiver: u32) -> Self {
        Self {
            sender,
            receiver,
            at_start: (cpu_time(sender), cpu_time(receiver)),
        }
    }

    pub fn stop(self) -> (Duration, Duration) {
        (
            cpu_time(self.sender).saturating_sub(self.at_start.0),
            cpu_time(self.receiver).saturating_sub(self.at_start.1),
        )
    }
}
