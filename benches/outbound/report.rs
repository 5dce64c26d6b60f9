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
