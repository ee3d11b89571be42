//! Where things are in a JSON text: the byte offset of a member or element named by a path, for diagnostics on the
//! shape of a JSON file (serde_json gives positions for syntax errors only).

/// One step into a JSON document: a member of an object (by key) or an element of an array (by index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Key(k) => write!(f, "{k}"),
            Step::Index(i) => write!(f, "{i}"),
        }
    }
}

/// A path as Claude Code writes it in its messages: `hooks.PreToolUse.0.hooks.0`.
pub fn dotted(path: &[Step]) -> String {
    path.iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// The byte offset in `text` of what `path` names: a member's key (its first character, inside the quotes) or an
/// array element's first character. Where the path leads nowhere, the offset of the deepest part of it that exists
/// (0 for the document itself). Never panics, on any text.
pub fn locate(text: &str, path: &[Step]) -> usize {
    let mut p = Scanner {
        b: text.as_bytes(),
        i: 0,
    };
    p.ws();
    let mut best = p.i;
    for step in path {
        match step {
            Step::Key(key) => {
                if p.peek() != Some(b'{') {
                    return best;
                }
                p.i += 1;
                loop {
                    p.ws();
                    if p.peek() != Some(b'"') {
                        return best;
                    }
                    let start = p.i;
                    let Some(k) = p.string() else { return best };
                    p.ws();
                    if p.peek() != Some(b':') {
                        return best;
                    }
                    p.i += 1;
                    p.ws();
                    if k == *key {
                        best = start + 1;
                        break;
                    }
                    if !p.skip_value() {
                        return best;
                    }
                    p.ws();
                    if p.peek() != Some(b',') {
                        return best;
                    }
                    p.i += 1;
                }
            }
            Step::Index(n) => {
                if p.peek() != Some(b'[') {
                    return best;
                }
                p.i += 1;
                let mut j = 0;
                loop {
                    p.ws();
                    if p.peek().is_none() || p.peek() == Some(b']') {
                        return best;
                    }
                    if j == *n {
                        best = p.i;
                        break;
                    }
                    if !p.skip_value() {
                        return best;
                    }
                    p.ws();
                    if p.peek() != Some(b',') {
                        return best;
                    }
                    p.i += 1;
                    j += 1;
                }
            }
        }
    }
    best
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// Reads a string at the cursor (which is on its `"`), decoded; `None` when it is not closed.
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        self.i += 1;
        while let Some(c) = self.peek() {
            match c {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    let raw = std::str::from_utf8(self.b.get(start..self.i)?).ok()?;
                    return serde_json::from_str(raw).ok();
                }
                _ => self.i += 1,
            }
        }
        None
    }

    /// Skips one value at the cursor; false when the text ends first.
    fn skip_value(&mut self) -> bool {
        match self.peek() {
            None => false,
            Some(b'"') => self.string().is_some(),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                while let Some(c) = self.peek() {
                    match c {
                        b'"' => {
                            if self.string().is_none() {
                                return false;
                            }
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return true;
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                false
            }
            Some(_) => {
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.i += 1;
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Step {
        Step::Key(s.into())
    }

    #[test]
    fn locate_finds_members_and_elements() {
        let text = "{\n  \"a\": {\"x\": [1, {\"y\": \"}\"}, [2]]},\n  \"b\\u0022\": 3,\n  \"c\": [ {\"d\": 4} ]\n}";
        let at = |path: &[Step]| &text[locate(text, path)..];
        assert!(at(&[k("a")]).starts_with("a\": {"));
        assert!(at(&[k("a"), k("x"), Step::Index(1), k("y")]).starts_with("y\": \"}\""));
        assert!(at(&[k("a"), k("x"), Step::Index(2)]).starts_with("[2]"));
        assert!(at(&[k("b\"")]).starts_with("b\\u0022"));
        assert!(at(&[k("c"), Step::Index(0), k("d")]).starts_with("d\": 4"));
        // A path that leads nowhere stops at the deepest part that exists.
        assert!(at(&[k("c"), Step::Index(5)]).starts_with("c\": ["));
        assert!(at(&[k("a"), k("nope")]).starts_with("a\": {"));
        assert_eq!(locate(text, &[]), 0);
        assert_eq!(
            dotted(&[k("hooks"), k("Stop"), Step::Index(0)]),
            "hooks.Stop.0"
        );
    }

    #[test]
    fn locate_never_panics_on_broken_text() {
        for text in [
            "",
            "{",
            "{\"a",
            "{\"a\":",
            "[",
            "[1,",
            "{\"a\": [1, {\"b\": \"\\",
            "\"",
            "{\"a\" 1}",
        ] {
            for path in [vec![k("a"), Step::Index(1), k("b")], vec![Step::Index(0)]] {
                assert!(locate(text, &path) <= text.len());
            }
        }
    }
}
