//! One row of the benchmark's table.

use std::time::Duration;

/// What one scenario measured.
pub struct Row {
    pub name: String,
    pub offered: String,
    pub delivered: usize,
    /// Deliveries (or requests) per second.
    pub rate: f64,
    /// Sorted.
    pub latencies_us: Vec<u64>,
    /// Failed requests, and paced publishes skipped because 1024 were already in flight.
    pub errors: usize,
    /// CPU time per delivery of the sender (nexus; the bench's client for the ceiling) and
    /// of the receiver, in microseconds.
    pub cpu_us: (f64, f64),
}

impl Row {
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let n = self.latencies_us.len();
        let index = ((n as f64 * p).ceil() as usize).clamp(1, n);
        self.latencies_us[index - 1] as f64 / 1e3
    }

    pub fn print(&self) {
        println!(
            "| {:<34} | {:>14} | {:>9} | {:>12.0} | {:>8.2} | {:>8.2} | {:>6} | {:>9.1} | {:>11.1} |",
            self.name,
            self.offered,
            self.delivered,
            self.rate,
            self.percentile_ms(0.50),
            self.percentile_ms(0.99),
            self.errors,
            self.cpu_us.0,
            self.cpu_us.1,
        );
    }
}

impl Row {
    pub fn new(
        name: &str,
        offered: String,
        latencies_us: Vec<u64>,
        elapsed: Duration,
        errors: usize,
        cpu: (Duration, Duration),
    ) -> Self {
        let per_delivery =
            |cpu: Duration| cpu.as_secs_f64() * 1e6 / latencies_us.len().max(1) as f64;
        Self {
            name: name.to_owned(),
            offered,
            delivered: latencies_us.len(),
            rate: latencies_us.len() as f64 / elapsed.as_secs_f64(),
            cpu_us: (per_delivery(cpu.0), per_delivery(cpu.1)),
            latencies_us,
            errors,
        }
    }
}

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
