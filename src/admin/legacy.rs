//! Text for legacy pages: the `<script>` subscriber modes insert a message
//! verbatim into a JavaScript string (`p(1,"chat","~text~")`), so
//! publishers escape it first. The admin UI's publish form does that for
//! them, and says what in a text would break such pages.
//!
//! `ui/static/admin.js` has the same rules for its live warning; keep them
//! in step.

/// Escape `text` as the body of a JavaScript string literal, quoted with
/// `"` or `'`, inside an HTML `<script>` element.
pub fn js_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            '<' if chars.peek() == Some(&'/') => out.push_str("<\\"),
            c => out.push(c),
        }
    }
    out
}

/// What in `text` breaks a legacy page when sent unescaped, in words.
pub fn legacy_problems(text: &str) -> Vec<&'static str> {
    let mut problems = Vec::new();
    if text.contains('"') {
        problems.push("a double quote (\")");
    }
    if text.contains('\\') {
        problems.push("a backslash (\\)");
    }
    if text.contains(['\n', '\r']) {
        problems.push("a line break");
    }
    if text.to_ascii_lowercase().contains("</script") {
        problems.push("</script>");
    }
    if text.contains(['\u{2028}', '\u{2029}']) {
        problems.push("a Unicode line or paragraph separator (U+2028/U+2029)");
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_breaks_a_script_string() {
        assert_eq!(js_escape("plain text ü"), "plain text ü");
        assert_eq!(
            js_escape("say \"hi\"\\ it's\r\n</script><b>"),
            "say \\\"hi\\\"\\\\ it\\'s\\r\\n<\\/script><b>"
        );
        assert_eq!(js_escape("a\u{2028}b\u{2029}"), "a\\u2028b\\u2029");
        assert_eq!(js_escape("<<//"), "<<\\//");
    }

    #[test]
    fn names_the_problems() {
        assert!(legacy_problems("fine, isn't it? <b>ok</b>").is_empty());
        assert_eq!(
            legacy_problems("\"x\"\n</SCRIPT>\\"),
            vec![
                "a double quote (\")",
                "a backslash (\\)",
                "a line break",
                "</script>"
            ]
        );
        assert_eq!(legacy_problems("a\u{2028}").len(), 1);
    }
}
