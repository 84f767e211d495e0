//! Sampling the host's load and memory for heartbeats, with `sysinfo`.

/// Samples the host; keeps its `sysinfo` state between samples.
pub(crate) struct HostSampler {
    /// `None` where `sysinfo` does not support the platform: the figures are then zero.
    system: Option<sysinfo::System>,
    cpus: f64,
}

/// What the host looked like at one time.
pub(crate) struct HostSample {
    /// The one-minute load average per CPU.
    pub(crate) cpu_load: f64,
    pub(crate) mem_used_bytes: u64,
    pub(crate) mem_total_bytes: u64,
}

impl HostSampler {
    pub(crate) fn new() -> Self {
        let system = sysinfo::System::new().ok();
        if system.is_none() {
            tracing::warn!(
                "host metrics are not available on this platform: heartbeats report zero load and memory"
            );
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        Self { system, cpus }
    }

    pub(crate) fn sample(&mut self) -> HostSample {
        let cpu_load = sysinfo::System::load_average().map_or(0.0, |load| load.one / self.cpus);
        match &mut self.system {
            Some(system) => {
                system.refresh_memory();
                HostSample {
                    cpu_load,
                    mem_used_bytes: system.used_memory(),
                    mem_total_bytes: system.total_memory(),
                }
            }
            None => HostSample {
                cpu_load,
                mem_used_bytes: 0,
                mem_total_bytes: 0,
            },
        }
    }
}
