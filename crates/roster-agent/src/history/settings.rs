//! The history's settings: where it is (`--history`), how many records may wait
//! (`--history-queue`), and how long heartbeats are kept (`--heartbeat-retention`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::sqlite::SqliteStore;

/// The default bound of the queue of records waiting to be written.
pub const DEFAULT_QUEUE: usize = 65_536;

/// The default heartbeat retention: 7 days.
pub const DEFAULT_HEARTBEAT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where the history is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Not kept (`--history off`).
    Off,
    /// In a SQLite file (`--history sqlite[:PATH]`; default `<data-dir>/history.sqlite3`).
    Sqlite(PathBuf),
    /// In a PostgreSQL database (`--history postgres://user@host:port/db`).
    Postgres(String),
}

/// The validated history settings.
#[derive(Clone, PartialEq, Eq)]
pub struct HistorySettings {
    /// Where.
    pub backend: Backend,
    /// At most this many records wait to be written (and as many more are held while the
    /// database is unreachable); beyond, records are dropped and counted.
    pub queue: usize,
    /// Heartbeats older than this are deleted.
    pub heartbeat_retention: Duration,
}

impl std::fmt::Debug for HistorySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.backend {
            Backend::Off => "off".to_owned(),
            Backend::Sqlite(path) => format!("sqlite:{}", path.display()),
            Backend::Postgres(_) => "postgres".to_owned(),
        };
        f.debug_struct("HistorySettings")
            .field("backend", &backend)
            .field("queue", &self.queue)
            .field("heartbeat_retention", &self.heartbeat_retention)
            .finish()
    }
}

impl HistorySettings {
    /// The settings from the values given (`None`: the default), for an agent whose data
    /// directory is `data_dir`. Errors are `(setting, value, what is allowed)`.
    ///
    /// # Errors
    ///
    /// The setting whose value is not allowed.
    pub fn parse(
        history: Option<&str>,
        queue: Option<usize>,
        retention: Option<&str>,
        data_dir: &Path,
    ) -> Result<Self, (&'static str, String, &'static str)> {
        let backend = match history.unwrap_or("sqlite") {
            "off" => Backend::Off,
            "sqlite" => Backend::Sqlite(SqliteStore::default_path(data_dir)),
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Backend::Postgres(url.to_owned())
            }
            other => match other.strip_prefix("sqlite:") {
                Some(path) if !path.is_empty() => Backend::Sqlite(PathBuf::from(path)),
                _ => {
                    return Err((
                        "--history",
                        other.to_owned(),
                        "off, sqlite, sqlite:PATH or postgres://USER@HOST:PORT/DB",
                    ));
                }
            },
        };
        let queue = queue.unwrap_or(DEFAULT_QUEUE);
        if !(1..=16_777_216).contains(&queue) {
            return Err((
                "--history-queue",
                queue.to_string(),
                "a number of records from 1 to 16777216",
            ));
        }
        let heartbeat_retention = match retention {
            None => DEFAULT_HEARTBEAT_RETENTION,
            Some(text) => parse_duration(text)
                .filter(|d| *d >= Duration::from_secs(60))
                .ok_or((
                    "--heartbeat-retention",
                    text.to_owned(),
                    "a duration of at least a minute, e.g. 90m, 12h or 7d",
                ))?,
        };
        Ok(Self {
            backend,
            queue,
            heartbeat_retention,
        })
    }
}

/// A duration written as a whole number and a unit: `ms`, `s`, `m`, `h` or `d` (e.g.
/// `500ms`, `30s`, `7d`); `None` if it is not one.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(Duration::from_millis(number.checked_mul(millis)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_backends_parse() {
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5y"), None);
        let dir = Path::new("/data");
        let settings = HistorySettings::parse(None, None, None, dir).unwrap();
        assert_eq!(
            settings.backend,
            Backend::Sqlite(PathBuf::from("/data/history.sqlite3"))
        );
        assert_eq!(settings.heartbeat_retention, DEFAULT_HEARTBEAT_RETENTION);
        assert_eq!(
            HistorySettings::parse(Some("postgres://u@h:5432/d"), None, None, dir)
                .unwrap()
                .backend,
            Backend::Postgres("postgres://u@h:5432/d".to_owned())
        );
        assert_eq!(
            HistorySettings::parse(Some("mysql://x"), None, None, dir)
                .unwrap_err()
                .0,
            "--history"
        );
        assert_eq!(
            HistorySettings::parse(None, None, Some("10s"), dir)
                .unwrap_err()
                .0,
            "--heartbeat-retention"
        );
    }
}
