//! Rules on the token stream, checked before anything is parsed: what the database would read
//! differently from sqlparser (executable comments, optimizer hints, Unicode-escaped names), what
//! leaves state on the connection (MySQL user variables), and the statement's size and depth, so
//! the parser and every later walk of the tree stay bounded.

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan, Whitespace};

use super::{Dialect, GuardError};

/// What the scan learned about a statement that passed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Shape {
    /// Tokens other than whitespace and comments.
    pub tokens: usize,
    /// An upper bound of the syntax tree's depth: parentheses plus the operators chained inside
    /// them. Infix chains (`1+1+…`, `a AND b AND …`, `UNION ALL …`) nest one level per operator,
    /// which the parser's own recursion limit does not see.
    pub depth: usize,
    /// Whether the unquoted keyword INTO appears (a read never needs it).
    pub has_into: bool,
}

/// Scans `tokens` for `dialect`; the first rule broken is the error.
pub(super) fn scan(tokens: &[TokenWithSpan], dialect: Dialect) -> Result<Shape, GuardError> {
    let mut shape = Shape {
        tokens: 0,
        depth: 0,
        has_into: false,
    };
    let mut depth = Depth {
        chains: vec![0],
        chained: 0,
    };
    for (index, token) in tokens.iter().enumerate() {
        let token = &token.token;
        if let Token::Whitespace(space) = token {
            check_comment(space, dialect)?;
            continue;
        }
        shape.tokens += 1;
        match token {
            Token::LParen => depth.open(),
            Token::RParen => depth.close(),
            Token::Comma => depth.next_item(),
            Token::Word(word) if word.quote_style.is_none() => {
                check_word(tokens, index, &word.value, dialect)?;
                shape.has_into |= word.keyword == Keyword::INTO;
                if chains_a_level(word.keyword) {
                    depth.chain();
                }
            }
            Token::Assignment if dialect == Dialect::Mysql => {
                return Err(GuardError::UserVariable);
            }
            other if is_operator(other) => depth.chain(),
            _ => {}
        }
        shape.depth = shape.depth.max(depth.now());
    }
    Ok(shape)
}

/// The depth estimate as the scan goes: open parentheses, plus the operators chained in the
/// current list item of each (a comma starts a sibling, not a deeper level).
struct Depth {
    /// Operators in the current item, per open parenthesis (the statement itself first).
    chains: Vec<usize>,
    /// Their sum.
    chained: usize,
}

impl Depth {
    fn open(&mut self) {
        self.chains.push(0);
    }

    fn close(&mut self) {
        if self.chains.len() > 1
            && let Some(count) = self.chains.pop()
        {
            self.chained -= count;
        }
    }

    fn next_item(&mut self) {
        if let Some(count) = self.chains.last_mut() {
            self.chained -= *count;
            *count = 0;
        }
    }

    fn chain(&mut self) {
        if let Some(count) = self.chains.last_mut() {
            *count += 1;
            self.chained += 1;
        }
    }

    fn now(&self) -> usize {
        self.chained + self.chains.len()
    }
}

/// Where the statement ends: before its first trailing `;` (and the comments after it), so it can
/// stand inside parentheses. Semicolons inside strings or comments are parts of those tokens.
pub(super) fn statement_end(sql: &str, tokens: &[TokenWithSpan]) -> usize {
    let mut first_trailing = None;
    for token in tokens.iter().rev() {
        match token.token {
            Token::Whitespace(_) => {}
            Token::SemiColon => first_trailing = Some(token.span.start),
            _ => break,
        }
    }
    let Some(at) = first_trailing else {
        return sql.len();
    };
    // Locations count lines from 1 and characters within the line from 1.
    let (mut line, mut column) = (1, 1);
    for (offset, c) in sql.char_indices() {
        if line == at.line && column == at.column {
            return offset;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    sql.len()
}

/// Keywords that add a level to the tree when chained: boolean and set operators, the infix
/// predicates, and the prefixes that nest (NOT NOT …, CASE inside CASE).
fn chains_a_level(keyword: Keyword) -> bool {
    matches!(
        keyword,
        Keyword::AND
            | Keyword::OR
            | Keyword::XOR
            | Keyword::NOT
            | Keyword::UNION
            | Keyword::INTERSECT
            | Keyword::EXCEPT
            | Keyword::MINUS
            | Keyword::IS
            | Keyword::LIKE
            | Keyword::ILIKE
            | Keyword::RLIKE
            | Keyword::REGEXP
            | Keyword::SIMILAR
            | Keyword::BETWEEN
            | Keyword::IN
            | Keyword::DIV
            | Keyword::MOD
            | Keyword::COLLATE
            | Keyword::AT
            | Keyword::CASE
            | Keyword::OVERLAPS
    )
}

/// Tokens that are operators: everything but names, literals, placeholders and separators.
fn is_operator(token: &Token) -> bool {
    !matches!(
        token,
        Token::EOF
            | Token::Word(_)
            | Token::Number(..)
            | Token::Char(_)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::TripleSingleQuotedString(_)
            | Token::TripleDoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::Comma
            | Token::LParen
            | Token::RParen
            | Token::RBracket
            | Token::Period
            | Token::SemiColon
            | Token::Placeholder(_)
    )
}

/// Finds the comments MySQL or MariaDB would act on, lexing `sql` the way their servers do
/// (sqlparser unwraps `/*! … */` into tokens, so its token stream cannot show them): MySQL runs
/// `/*! … */` and `/*!50000 … */`, MariaDB also `/*M! … */` and `/*M!100000 … */`, and
/// `/*+ … */` are optimizer hints, which can lift the statement's time limit.
pub(super) fn check_mysql_comments(sql: &str) -> Result<(), GuardError> {
    let bytes = sql.as_bytes();
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'\'' | b'"' | b'`' => at = skip_quoted(bytes, at),
            b'#' => at = skip_line(bytes, at),
            b'-' if bytes.get(at + 1) == Some(&b'-') => match bytes.get(at + 2) {
                None | Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) => {
                    at = skip_line(bytes, at)
                }
                // Other control bytes, DEL and non-ASCII after `--`: servers and versions differ
                // on whether a comment starts, so the statement would be read two ways.
                Some(&b) if !(b' '..0x7f).contains(&b) => return Err(GuardError::UnusualComment),
                Some(_) => at += 2,
            },
            b'/' if bytes.get(at + 1) == Some(&b'*') => {
                let body = &bytes[at + 2..];
                let body = body
                    .strip_prefix(b"M")
                    .or_else(|| body.strip_prefix(b"m"))
                    .unwrap_or(body);
                match body.first() {
                    Some(b'!') => return Err(GuardError::ExecutableComment),
                    Some(b'+') => return Err(GuardError::OptimizerHint),
                    _ => {}
                }
                at = match find(&bytes[at + 2..], b"*/") {
                    Some(end) => at + 2 + end + 2,
                    None => bytes.len(),
                };
            }
            _ => at += 1,
        }
    }
    Ok(())
}

/// The index after the string or quoted identifier opening at `start`: backslash escapes the
/// next byte in strings (the session pins sql_mode without NO_BACKSLASH_ESCAPES), and a doubled
/// quote stands for itself.
fn skip_quoted(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut at = start + 1;
    while let Some(&byte) = bytes.get(at) {
        if byte == b'\\' && quote != b'`' {
            at += 2;
        } else if byte == quote {
            if bytes.get(at + 1) == Some(&quote) {
                at += 2;
            } else {
                return at + 1;
            }
        } else {
            at += 1;
        }
    }
    bytes.len()
}

fn skip_line(bytes: &[u8], start: usize) -> usize {
    find(&bytes[start..], b"\n").map_or(bytes.len(), |end| start + end + 1)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn check_comment(space: &Whitespace, dialect: Dialect) -> Result<(), GuardError> {
    if dialect != Dialect::Mysql {
        return Ok(());
    }
    match space {
        // sqlparser ends a `-- ` comment at any Unicode whitespace after the dashes; MySQL only
        // at ASCII whitespace or a control character, and reads the rest of the line as SQL.
        Whitespace::SingleLineComment { prefix, comment } if prefix == "--" => {
            match comment.chars().next() {
                Some(c) if !(c.is_ascii_whitespace() || c.is_ascii_control()) => {
                    Err(GuardError::UnusualComment)
                }
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

fn check_word(
    tokens: &[TokenWithSpan],
    index: usize,
    value: &str,
    dialect: Dialect,
) -> Result<(), GuardError> {
    match dialect {
        // `@v` reads or writes a user variable, which outlives the call on a pooled connection;
        // `@@name` only reads a system variable.
        Dialect::Mysql if value.starts_with('@') && !value.starts_with("@@") => {
            Err(GuardError::UserVariable)
        }
        // PostgreSQL decodes `U&"pg\005fread\005ffile"` to pg_read_file; sqlparser reads the
        // word U, an `&` and a quoted name. Such names are refused rather than decoded twice.
        Dialect::Postgres if value.eq_ignore_ascii_case("u") => {
            let next = tokens.get(index + 1).map(|t| &t.token);
            let after = tokens.get(index + 2).map(|t| &t.token);
            match (next, after) {
                (Some(Token::Ampersand), Some(Token::Word(word))) if word.quote_style.is_some() => {
                    Err(GuardError::UnicodeEscapedName)
                }
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}
