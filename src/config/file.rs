//! The `meteord.conf` file format.
//!
//! `Key value` lines; `#` starts a comment line; `[name]` opens a mode
//! section, and every key after it belongs to that mode. The value is the
//! rest of the line after the spaces that follow the key, trailing spaces
//! included. Escapes are applied later, when values are resolved.

use std::collections::{BTreeMap, BTreeSet};

use super::{entries_of, keys, ConfigError, Source};

/// A value as written in the file.
#[derive(Debug, Clone)]
pub struct FileValue {
    pub raw: String,
    pub source: Source,
}

/// A parsed configuration file.
#[derive(Debug, Default)]
pub struct ConfigFile {
    values: BTreeMap<(String, Option<String>), FileValue>,
    modes: BTreeSet<String>,
}

impl ConfigFile {
    /// Parse a whole file; `source` says how to label a line number.
    pub fn parse(
        text: &[u8],
        path: &str,
        source: fn(usize) -> Source,
    ) -> Result<ConfigFile, ConfigError> {
        let error = |line: usize, message: String| ConfigError::File {
            path: path.to_string(),
            line,
            message,
        };
        let text = std::str::from_utf8(text).map_err(|e| {
            let line = text[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            error(line, "not valid UTF-8 text".to_string())
        })?;

        let mut file = ConfigFile::default();
        let mut mode: Option<String> = None;
        for (index, line) in text.split('\n').enumerate() {
            let number = index + 1;
            let line = line.trim_end_matches(['\r', '\n']);
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if let Some(name) = section_name(line) {
                file.modes.insert(name.to_string());
                mode = Some(name.to_string());
                continue;
            }
            if line.starts_with(char::is_whitespace) {
                return Err(error(
                    number,
                    format!("a key must start at the beginning of the line: '{line}'"),
                ));
            }
            let (key, value) = match line.find(char::is_whitespace) {
                Some(end) => (&line[..end], line[end..].trim_start()),
                None => (line, ""),
            };
            let Some(known) = keys::find(key) else {
                return Err(error(
                    number,
                    format!("unknown key '{key}'{}", suggestion(key)),
                ));
            };
            if known.name == "ConfigFileLocation" {
                return Err(error(
                    number,
                    "'ConfigFileLocation' cannot be set inside a config file".to_string(),
                ));
            }
            let raw = match value.strip_prefix("--") {
                Some(rest) => format!("-{rest}"),
                None => value.to_string(),
            };
            file.values.insert(
                (known.name.to_string(), mode.clone()),
                FileValue {
                    raw,
                    source: source(number),
                },
            );
        }
        Ok(file)
    }

    pub fn get(&self, key: &str, mode: Option<&str>) -> Option<&FileValue> {
        self.values
            .get(&(key.to_string(), mode.map(str::to_string)))
    }

    pub fn modes(&self) -> impl Iterator<Item = &String> {
        self.modes.iter()
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, Option<&str>, &FileValue)> {
        entries_of(&self.values)
    }
}

/// `[name]`, with optional spaces inside and around the brackets.
fn section_name(line: &str) -> Option<&str> {
    let inner = line.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
    let valid = !inner.is_empty() && !inner.contains(|c: char| c == ']' || c.is_whitespace());
    valid.then_some(inner)
}

/// ", did you mean 'X'?" for a key that differs only in letter case.
fn suggestion(key: &str) -> String {
    keys::KEYS
        .iter()
        .find(|k| k.name.eq_ignore_ascii_case(key))
        .map(|k| format!(", did you mean '{}'?", k.name))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(text.as_bytes(), "test.conf", Source::File)
    }

    #[test]
    fn keys_values_and_sections() {
        let f = parse("# comment\n  # indented comment\n\nPingInterval 3\nMaxTime\t\t240  \n[ longpoll ]\nMaxMessages 1\nPersist --1\n").unwrap();
        assert_eq!(f.get("PingInterval", None).unwrap().raw, "3");
        assert_eq!(f.get("MaxTime", None).unwrap().raw, "240  ");
        assert_eq!(f.get("MaxMessages", Some("longpoll")).unwrap().raw, "1");
        assert_eq!(f.get("Persist", Some("longpoll")).unwrap().raw, "-1");
        assert_eq!(f.get("MaxTime", None).unwrap().source, Source::File(5));
        assert!(f.get("MaxMessages", None).is_none());
        assert_eq!(f.modes().collect::<Vec<_>>(), ["longpoll"]);
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let err = parse("PingInterval 3\n\nPingIntervall 4\n")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "test.conf: line 3: unknown key 'PingIntervall'");
        let err = parse("pinginterval 4\n").unwrap_err().to_string();
        assert!(err.contains("did you mean 'PingInterval'"), "{err}");
        let err = parse("ConfigFileLocation /x\n").unwrap_err().to_string();
        assert!(err.starts_with("test.conf: line 1:"), "{err}");
        let err = parse("  Debug 1\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
