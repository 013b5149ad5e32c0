//! Logging with tracing: key/value fields, as text for people (and journald) or JSON lines.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Third-party modules that log routine facts at info/warn (e.g. Symphonia's "ignoring stss
/// atom" for every MP4 opened); kept quiet unless RUST_LOG asks for them.
const QUIET: &[&str] = &[
    "symphonia_format_isomp4=error",
    "symphonia_core=warn",
    "symphonia_bundle_mp3=warn",
];

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the configured level.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let mut f = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
        for d in QUIET {
            if let Ok(d) = d.parse() {
                f = f.add_directive(d);
            }
        }
        f
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
