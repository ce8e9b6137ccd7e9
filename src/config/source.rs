//! The config file as every part of the server reads it: its text, where it came from, and the
//! helpers that turn a problem into a [`ConfigError`] naming the file, the line and a fix.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::ConfigError;

/// One version of the config file. The core and each tool kind decode their own keys from it.
#[derive(Clone)]
pub struct ConfigSource {
    text: Arc<str>,
    origin: Arc<str>,
    /// The file's folder: relative paths in the file are relative to it.
    base: Option<PathBuf>,
    /// There is no file: the built-in configuration.
    builtin: bool,
}

// The text may hold secrets (tokens), so only the origin is shown.
impl std::fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSource")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl ConfigSource {
    /// Config text named `origin` in errors; relative paths resolve against `base`.
    pub fn new(text: impl Into<Arc<str>>, origin: &str, base: Option<&Path>) -> Self {
        ConfigSource {
            text: text.into(),
            origin: Arc::from(origin),
            base: base.map(Path::to_owned),
            builtin: false,
        }
    }

    /// No file at all: every part of the server takes its defaults.
    pub fn none() -> Self {
        ConfigSource {
            builtin: true,
            ..ConfigSource::new("", "(no config file)", None)
        }
    }

    /// Whether there is no file at all (the built-in configuration).
    pub fn is_none(&self) -> bool {
        self.builtin
    }

    /// The file, for errors.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Decodes the whole file into `T`, which names only the keys its reader owns; a type
    /// error inside one of them is reported with its line.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(&self.text).map_err(|e| ConfigError::Parse {
            path: self.origin.to_string(),
            message: e.to_string(),
        })
    }

    /// The 1-based line of byte `offset` (from a `toml::Spanned` value).
    pub fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    /// The line of the first `field = "value"` in the file, which finds an entry of an array of
    /// tables (`[[sql_tools]]`) by its name; 0 when there is none.
    pub fn line_of_entry(&self, field: &str, value: &str) -> usize {
        let quoted = [format!("\"{value}\""), format!("'{value}'")];
        self.text
            .lines()
            .position(|line| {
                line.trim_start()
                    .strip_prefix(field)
                    .and_then(|rest| rest.trim_start().strip_prefix('='))
                    .is_some_and(|rest| quoted.iter().any(|q| rest.trim() == q))
            })
            .map_or(0, |index| index + 1)
    }

    /// The line of the table `[section.name]` (written bare or quoted), 0 when it is written
    /// another way (inline, dotted keys).
    pub fn line_of_table(&self, section: &str, name: &str) -> usize {
        let headers = [
            format!("[{section}.{name}]"),
            format!("[{section}.\"{name}\"]"),
            format!("[{section}.'{name}']"),
        ];
        self.text
            .lines()
            .position(|line| headers.iter().any(|h| line.trim() == h))
            .map_or(0, |index| index + 1)
    }

    /// An unusable value at `line` (0 when unknown) of dotted key `key`.
    pub fn invalid(
        &self,
        line: usize,
        key: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.origin.to_string(),
            line,
            key: key.into(),
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// `value` with `${NAME}` references replaced from the environment.
    pub fn expand(&self, value: &str, line: usize, key: &str) -> Result<String, ConfigError> {
        super::expand_env(value).map_err(|message| {
            self.invalid(
                line,
                key,
                message,
                "export the variable or use ${NAME:-default}",
            )
        })
    }

    /// A path from the file: expanded, and relative to the file's folder when relative (not
    /// to wherever the agent host happened to launch the server).
    pub fn path(&self, value: &str, key: &str) -> Result<PathBuf, ConfigError> {
        Ok(self.resolve(PathBuf::from(self.expand(value, 0, key)?)))
    }

    /// `path`, relative to the file's folder when relative.
    pub fn resolve(&self, path: PathBuf) -> PathBuf {
        match &self.base {
            Some(base) if path.is_relative() => base.join(path),
            _ => path,
        }
    }
}
