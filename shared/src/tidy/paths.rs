//! The paths a Rust file names, read well enough for the tidy checks: its `use` trees expanded
//! (grouped and nested imports, `self`, renames) and every other `a::b::c` it writes, each
//! resolved from the crate root when it can be — through `crate::`, `self::`, `super::`, or a
//! name a `use` brought in. Comments, strings and characters are no code: a message or an SQL
//! text naming a module names nothing.

use std::collections::HashMap;

/// A lexical piece of code: a name, `::`, or any other punctuation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Name(String),
    PathSep,
    Punct(char),
}

/// The code without comments and literals: each comment, string and character becomes a space.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
            out.push(' ');
        } else if c == 'r' && raw_string_at(&chars, i).is_some() {
            i = raw_string_at(&chars, i).unwrap_or(i + 1);
            out.push(' ');
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(' ');
        } else if c == '\'' {
            i = char_literal_end(&chars, i).unwrap_or(i + 1);
            out.push(' ');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Where the raw string starting at `i` (`r"…"`, `r#"…"#`) ends, if one starts there (and `r` is
/// not the end of a longer name).
fn raw_string_at(chars: &[char], i: usize) -> Option<usize> {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') && chars[i - 1] != 'b' {
        return None;
    }
    let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
    if chars.get(i + 1 + hashes) != Some(&'"') {
        return None;
    }
    let close: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    let body = i + 2 + hashes;
    (body..chars.len())
        .find(|&j| chars[j..].starts_with(&close))
        .map(|j| j + close.len())
}

/// Where the character literal starting at `i` ends; `None` for a lifetime (`'a`).
fn char_literal_end(chars: &[char], i: usize) -> Option<usize> {
    match chars.get(i + 1) {
        Some('\\') => (i + 3..chars.len())
            .find(|&j| chars[j] == '\'')
            .map(|j| j + 1),
        Some(_) if chars.get(i + 2) == Some(&'\'') => Some(i + 3),
        _ => None,
    }
}

fn tokens(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Name(chars[start..i].iter().collect()));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Token::PathSep);
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(Token::Punct(c));
            }
            i += 1;
        }
    }
    out
}

/// One path a `use` tree names, and the name it binds (none for a glob).
struct Import {
    path: Vec<String>,
    binds: Option<String>,
}

/// Expands the use tree starting at `tokens[i]`, under `prefix`, into `out`; returns where it
/// ends (at the `,`, `}` or `;` after it).
fn use_tree(tokens: &[Token], mut i: usize, prefix: &[String], out: &mut Vec<Import>) -> usize {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(i) {
            Some(Token::Punct('{')) => {
                i += 1;
                while !matches!(tokens.get(i), Some(Token::Punct('}')) | None) {
                    i = use_tree(tokens, i, &path, out);
                    if tokens.get(i) == Some(&Token::Punct(',')) {
                        i += 1;
                    }
                }
                return i + 1;
            }
            Some(Token::Punct('*')) => {
                out.push(Import { path, binds: None });
                return i + 1;
            }
            Some(Token::Name(name)) => {
                let is_self = name == "self" && !path.is_empty();
                if !is_self {
                    path.push(name.clone());
                }
                i += 1;
                if tokens.get(i) == Some(&Token::PathSep) {
                    i += 1;
                    continue;
                }
                let mut binds = path.last().cloned();
                if tokens.get(i) == Some(&Token::Name("as".into())) {
                    binds = match tokens.get(i + 1) {
                        Some(Token::Name(alias)) if alias != "_" => Some(alias.clone()),
                        _ => None,
                    };
                    i += 2;
                }
                out.push(Import { path, binds });
                return i;
            }
            _ => return i,
        }
    }
}

/// The module each token is in: the file's, or an inline module's inside it (`mod tests { … }`),
/// as an index into the returned module paths.
fn modules_of(tokens: &[Token], file: &[&str]) -> (Vec<Vec<String>>, Vec<usize>) {
    let mut modules = vec![
        file.iter()
            .map(|m| (*m).to_owned())
            .collect::<Vec<String>>(),
    ];
    // (module index, brace depth its body opened at)
    let mut open: Vec<(usize, usize)> = vec![(0, 0)];
    let mut depth = 0;
    let mut scope = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.iter().enumerate() {
        scope.push(open.last().map_or(0, |(m, _)| *m));
        match token {
            Token::Punct('{') => {
                depth += 1;
                if let (Some(Token::Name(name)), Some(Token::Name(keyword))) = (
                    i.checked_sub(1).map(|j| &tokens[j]),
                    i.checked_sub(2).map(|j| &tokens[j]),
                ) && keyword == "mod"
                {
                    let mut path = modules[open.last().map_or(0, |(m, _)| *m)].clone();
                    path.push(name.clone());
                    modules.push(path);
                    open.push((modules.len() - 1, depth));
                }
            }
            Token::Punct('}') => {
                if open.len() > 1 && open.last().is_some_and(|(_, d)| *d == depth) {
                    open.pop();
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    (modules, scope)
}

/// `path` from the crate root, as written in `module`: through `crate::`, `self::`, `super::`
/// or a name `names` binds; `None` for anything else (another crate, a local item).
fn resolve(
    path: &[String],
    module: &[String],
    names: &HashMap<String, Vec<String>>,
) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    let mut base: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" => module.to_vec(),
        "super" => {
            let ups = path.iter().take_while(|s| *s == "super").count();
            let kept = module.len().checked_sub(ups)?;
            return Some([module[..kept].to_vec(), path[ups..].to_vec()].concat());
        }
        name => names.get(name)?.clone(),
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The crate paths one file names, each from the crate root without `crate` (`["billing",
/// "store", "find"]`). `module` is the file's own module path (`["billing", "run"]`).
pub(super) fn crate_paths(module: &[&str], text: &str) -> Vec<Vec<String>> {
    let tokens = tokens(&code_only(text));
    let (modules, scope) = modules_of(&tokens, module);
    let mut imports = Vec::new();
    let mut in_use = vec![false; tokens.len()];
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == Token::Name("use".into()) {
            let mut found = Vec::new();
            let end = use_tree(&tokens, i + 1, &[], &mut found);
            imports.extend(found.into_iter().map(|import| (scope[i], import)));
            in_use[i..end.min(tokens.len())].fill(true);
            i = end;
        } else {
            i += 1;
        }
    }
    // `use` paths resolve against their module's position alone; the names they bind, once
    // resolved, let the rest of the file's paths resolve too.
    let empty = HashMap::new();
    let mut names = HashMap::new();
    let mut out = Vec::new();
    for (at, import) in &imports {
        if let Some(resolved) = resolve(&import.path, &modules[*at], &empty) {
            if let Some(name) = &import.binds {
                names.insert(name.clone(), resolved.clone());
            }
            out.push(resolved);
        }
    }
    let mut i = 0;
    while i < tokens.len() {
        let Token::Name(first) = &tokens[i] else {
            i += 1;
            continue;
        };
        let mut path = vec![first.clone()];
        let mut j = i + 1;
        while let (Some(Token::PathSep), Some(Token::Name(next))) =
            (tokens.get(j), tokens.get(j + 1))
        {
            path.push(next.clone());
            j += 2;
        }
        let after_sep = i > 0 && tokens[i - 1] == Token::PathSep;
        if path.len() > 1 && !in_use[i] && !after_sep {
            out.extend(resolve(&path, &modules[scope[i]], &names));
        }
        i = j;
    }
    out
}

/// Whether the code declares a module `name` visible outside its parent (`pub`, `pub(crate)`,
/// `pub(super)`, `pub(in …)`).
pub(super) fn declares_visible_mod(text: &str, name: &str) -> bool {
    let tokens = tokens(&code_only(text));
    tokens.windows(2).enumerate().any(|(i, pair)| {
        pair == [Token::Name("mod".into()), Token::Name(name.into())]
            && i > 0
            && match &tokens[i - 1] {
                Token::Name(n) => n == "pub",
                Token::Punct(')') => tokens[..i]
                    .iter()
                    .rposition(|t| *t == Token::Punct('('))
                    .is_some_and(|open| open > 0 && tokens[open - 1] == Token::Name("pub".into())),
                _ => false,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(module: &[&str], text: &str) -> Vec<String> {
        let mut found: Vec<String> = crate_paths(module, text)
            .into_iter()
            .map(|p| p.join("::"))
            .collect();
        found.sort();
        found.dedup();
        found
    }

    #[test]
    fn use_trees_are_expanded_grouped_nested_renamed_and_with_self() {
        let text = "use crate::{billing::Bill, listing::{self, store::find as found, steps::*}};\n\
                    use crate::orders::ledger::{self as money};";
        assert_eq!(
            paths(&["metering"], text),
            [
                "billing::Bill",
                "listing",
                "listing::steps",
                "listing::store::find",
                "orders::ledger"
            ]
        );
    }

    #[test]
    fn names_brought_in_resolve_the_paths_written_with_them() {
        let text = "use crate::listing;\nuse crate::orders::ledger as money;\n\
                    fn f() { listing::store::steps(db); money::Cents(1); http::Method::GET; }";
        assert_eq!(
            paths(&["orders"], text),
            [
                "listing",
                "listing::store::steps",
                "orders::ledger",
                "orders::ledger::Cents"
            ]
        );
    }

    #[test]
    fn self_and_super_resolve_from_the_files_module() {
        let text = "use super::store::{self, CursorMove};\nfn f() { super::super::error::x(); \
                    self::inner::y(); }";
        assert_eq!(
            paths(&["billing", "run"], text),
            [
                "billing::run::inner::y",
                "billing::store",
                "billing::store::CursorMove",
                "error::x"
            ]
        );
    }

    #[test]
    fn inline_modules_are_modules_of_their_own() {
        let text = "mod inner {\n    use super::store;\n    mod deeper { fn f() { \
                    super::super::super::super::error::x(); } }\n}\nfn g() { self::h(); }";
        assert_eq!(
            paths(&["billing", "run"], text),
            ["billing::run::h", "billing::run::store", "error::x"]
        );
    }

    #[test]
    fn comments_strings_and_characters_name_nothing() {
        let text = "// crate::api::x\n/* crate::api::y */ let s = \"crate::api::z\";\n\
                    let r = r#\"crate::api::\"w\"#; let c = ':'; let q = '\\''; fn f<'a>() {}\n\
                    crate::error::Code::NotFound;";
        assert_eq!(paths(&["orders"], text), ["error::Code::NotFound"]);
    }

    #[test]
    fn a_visible_module_declaration_is_told_from_a_private_one() {
        for visible in [
            "pub mod store;",
            "pub(crate) mod store;",
            "pub(super) mod store;",
            "pub(in crate::x) mod store;",
        ] {
            assert!(declares_visible_mod(visible, "store"), "{visible}");
        }
        for private in [
            "mod store;",
            "pub(crate) fn f() {}\nmod store;",
            "// pub mod store;",
            "pub mod stored;",
        ] {
            assert!(!declares_visible_mod(private, "store"), "{private}");
        }
    }
}
