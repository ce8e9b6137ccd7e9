//! The prompt library: Markdown files with TOML front matter, served as MCP prompts.
//!
//! A prompt file starts with a `+++` block naming the prompt and its arguments; the body is the
//! message text, with `{{argument}}` replaced on `prompts/get`. The files in the repository's
//! `prompts/` folder are built into the binary; `prompts_dir` in the config adds more.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The prompts built into the binary, from the repository's `prompts/` folder.
const BUILTIN: &[(&str, &str)] = &[
    (
        "prompts/explore_warehouse.md",
        include_str!("../prompts/explore_warehouse.md"),
    ),
    (
        "prompts/answer_with_sql.md",
        include_str!("../prompts/answer_with_sql.md"),
    ),
    (
        "prompts/check_data_quality.md",
        include_str!("../prompts/check_data_quality.md"),
    ),
];

/// A prompt file that cannot be used, or a `prompts/get` that cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The file is malformed.
    #[error("prompt file {file}: {message}")]
    BadFile {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// No such prompt.
    #[error("unknown prompt '{0}'; call prompts/list to see the available prompts")]
    Unknown(String),
    /// A required argument is missing.
    #[error("prompt '{prompt}' needs argument '{argument}': {description}")]
    MissingArgument {
        /// The prompt.
        prompt: String,
        /// The argument.
        argument: String,
        /// What the argument is.
        description: String,
    },
    /// An argument the prompt does not take.
    #[error("prompt '{prompt}' takes no argument '{argument}'; it takes: {known}")]
    UnknownArgument {
        /// The prompt.
        prompt: String,
        /// The argument given.
        argument: String,
        /// The arguments it takes.
        known: String,
    },
}

/// One prompt: its front matter and body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompt {
    /// Name used in `prompts/get`.
    pub name: String,
    /// Human-readable title.
    pub title: Option<String>,
    /// What the prompt is for.
    pub description: String,
    /// Arguments, in order.
    #[serde(default)]
    pub arguments: Vec<PromptArgument>,
    #[serde(skip)]
    body: String,
}

/// One argument of a prompt.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptArgument {
    /// Name, used as `{{name}}` in the body.
    pub name: String,
    /// What to pass.
    pub description: String,
    /// Whether `prompts/get` must supply it.
    #[serde(default)]
    pub required: bool,
    /// Value used when an optional argument is not supplied.
    #[serde(default)]
    pub default: String,
}

impl Prompt {
    /// Parses a prompt file; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Prompt, PromptError> {
        let bad = |message: String| PromptError::BadFile {
            file: file.to_owned(),
            message,
        };
        let text = text.trim_start_matches('\u{feff}');
        let rest = text
            .strip_prefix("+++")
            .ok_or_else(|| bad("must start with a +++ front matter block".into()))?;
        let end = rest
            .find("\n+++")
            .ok_or_else(|| bad("the front matter block is not closed with +++".into()))?;
        let mut prompt: Prompt = toml::from_str(&rest[..end]).map_err(|e| bad(e.to_string()))?;
        prompt.body = rest[end + 4..].trim().to_owned();
        for placeholder in placeholders(&prompt.body) {
            if !prompt.arguments.iter().any(|a| a.name == placeholder) {
                return Err(bad(format!(
                    "the body uses {{{{{placeholder}}}}}, which is not a declared argument"
                )));
            }
        }
        Ok(prompt)
    }

    /// The message text with `args` substituted.
    pub fn render(&self, args: &BTreeMap<String, String>) -> Result<String, PromptError> {
        for given in args.keys() {
            if !self.arguments.iter().any(|a| &a.name == given) {
                return Err(PromptError::UnknownArgument {
                    prompt: self.name.clone(),
                    argument: given.clone(),
                    known: self
                        .arguments
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let mut text = self.body.clone();
        for argument in &self.arguments {
            let value = match args.get(&argument.name) {
                Some(value) if !value.trim().is_empty() => value,
                _ if argument.required => {
                    return Err(PromptError::MissingArgument {
                        prompt: self.name.clone(),
                        argument: argument.name.clone(),
                        description: argument.description.clone(),
                    });
                }
                _ => &argument.default,
            };
            text = text.replace(&format!("{{{{{}}}}}", argument.name), value);
        }
        Ok(text)
    }
}

fn placeholders(body: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                found.push(after[..end].trim());
                rest = &after[end + 2..];
            }
            None => break,
        }
    }
    found
}

/// All prompts served, by name.
#[derive(Debug, Default)]
pub struct PromptLibrary {
    prompts: BTreeMap<String, Prompt>,
}

impl PromptLibrary {
    /// The built-in prompts plus every `*.md` file in `extra_dir`.
    pub fn load(extra_dir: Option<&Path>) -> Result<Self, PromptError> {
        let mut library = PromptLibrary::default();
        for (file, text) in BUILTIN {
            library.add(Prompt::parse(text, file)?);
        }
        if let Some(dir) = extra_dir {
            let bad = |message: String| PromptError::BadFile {
                file: dir.display().to_string(),
                message,
            };
            let entries = std::fs::read_dir(dir).map_err(|e| bad(e.to_string()))?;
            let mut paths: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "md"))
                .collect();
            paths.sort();
            for path in paths {
                let file = path.display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|e| PromptError::BadFile {
                    file: file.clone(),
                    message: e.to_string(),
                })?;
                library.add(Prompt::parse(&text, &file)?);
            }
        }
        Ok(library)
    }

    fn add(&mut self, prompt: Prompt) {
        // A prompt from prompts_dir replaces a built-in one of the same name, on purpose.
        self.prompts.insert(prompt.name.clone(), prompt);
    }

    /// Every prompt, by name.
    pub fn list(&self) -> impl Iterator<Item = &Prompt> {
        self.prompts.values()
    }

    /// The named prompt.
    pub fn get(&self, name: &str) -> Result<&Prompt, PromptError> {
        self.prompts
            .get(name)
            .ok_or_else(|| PromptError::Unknown(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_prompts_parse() {
        let library = PromptLibrary::load(None).expect("built-in prompts are valid");
        assert!(library.list().count() >= 2);
    }

    #[test]
    fn arguments_are_substituted_and_checked() {
        let prompt = Prompt::parse(
            "+++\nname = \"p\"\ndescription = \"d\"\n[[arguments]]\nname = \"q\"\ndescription = \"the question\"\nrequired = true\n[[arguments]]\nname = \"w\"\ndescription = \"warehouse\"\ndefault = \"demo\"\n+++\nAnswer {{q}} on {{w}}.",
            "p.md",
        )
        .expect("valid");
        let mut args = BTreeMap::new();
        let missing = prompt.render(&args).expect_err("q is required").to_string();
        assert!(
            missing.contains("'q'") && missing.contains("the question"),
            "{missing}"
        );
        args.insert("q".to_owned(), "how many orders".to_owned());
        assert_eq!(
            prompt.render(&args).expect("ok"),
            "Answer how many orders on demo."
        );
        args.insert("x".to_owned(), "1".to_owned());
        assert!(prompt.render(&args).is_err());
    }

    #[test]
    fn undeclared_placeholders_are_refused_at_load() {
        let error = Prompt::parse(
            "+++\nname = \"p\"\ndescription = \"d\"\n+++\nUse {{nope}}.",
            "p.md",
        );
        assert!(error.is_err());
    }
}
