//! The Prometheus registry every service exposes on `/metrics`.

use prometheus::core::Collector;
use prometheus::{IntGaugeVec, Opts, Registry};

/// A registry whose metric names carry the service's prefix
/// (`<prefix>_<name>_<unit>`), with `<prefix>_build_info{version}` set to 1.
pub struct ServiceRegistry {
    registry: Registry,
}

impl ServiceRegistry {
    pub fn new(prefix: &str, version: &str) -> Self {
        let registry = ServiceRegistry {
            registry: Registry::new_custom(Some(prefix.to_owned()), None).expect("a service prefix is a valid name"),
        };
        let build = registry
            .register(IntGaugeVec::new(Opts::new("build_info", "Version of the running service."), &["version"]));
        build.with_label_values(&[version]).set(1);
        registry
    }

    /// Registers a collector and hands it back. Metric definitions are
    /// static, so a failure here is a programming error that the first test
    /// run finds.
    pub fn register<C: Collector + Clone + 'static>(&self, collector: prometheus::Result<C>) -> C {
        let collector = collector.expect("static metric definition is valid");
        self.registry.register(Box::new(collector.clone())).expect("metric names are unique");
        collector
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        prometheus::TextEncoder::new().encode_to_string(&self.registry.gather()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_names_and_exposes_build_info() {
        let r = ServiceRegistry::new("svc", "1.2.3");
        let c = r.register(prometheus::IntCounter::new("things_total", "Things."));
        c.inc_by(3);
        let text = r.render();
        assert!(text.contains("svc_things_total 3"), "{text}");
        assert!(text.contains(r#"svc_build_info{version="1.2.3"} 1"#), "{text}");
    }
}
