//! Pretty-printing JSON text without parsing it into values.
//!
//! Item files hold the item exactly as the API returned it. Going through
//! `serde_json::Value` would sort object keys and round numbers beyond `f64`, changing a
//! payload that the gateway promises to return byte for byte; re-indenting the text keeps
//! every key, number and escape as it was and only moves whitespace.

/// Re-indents valid JSON `text` the way `serde_json::to_string_pretty` lays it out
/// (two spaces, `"key": value`, empty `{}`/`[]`). Whitespace between tokens is dropped;
/// strings are copied verbatim.
pub fn pretty(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => copy_string(&mut chars, &mut out),
            '{' | '[' => {
                out.push(c);
                skip_whitespace(&mut chars);
                if matches!(chars.peek(), Some('}' | ']')) {
                    out.push(chars.next().unwrap_or_default());
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// Copies the rest of a string (its opening quote already seen), escapes included.
fn copy_string(chars: &mut impl Iterator<Item = char>, out: &mut String) {
    out.push('"');
    while let Some(c) = chars.next() {
        out.push(c);
        match c {
            '\\' => out.extend(chars.next()),
            '"' => return,
            _ => {}
        }
    }
}

fn skip_whitespace(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.next_if(|c| c.is_whitespace()).is_some() {}
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    out.extend(std::iter::repeat_n("  ", depth));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_layout_is_serde_jsons() {
        let text = r#"{"a":1,"b":[true,null,{"c":"d"}],"e":{},"f":[],"g":{"h":[1,2]}}"#;
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(pretty(text), serde_json::to_string_pretty(&value).unwrap());
    }

    #[test]
    fn keys_numbers_and_escapes_are_kept_exactly() {
        let text = r#"{"z":1,"a":123456789012345678901234567890,"s":"a\"b:{,}\\","u":"\u00e9 ]"}"#;
        let out = pretty(text);
        assert!(out.find("\"z\"").unwrap() < out.find("\"a\"").unwrap());
        assert!(out.contains("123456789012345678901234567890"));
        assert!(out.contains(r#""a\"b:{,}\\""#));
        assert!(out.contains(r#""\u00e9 ]""#));
        let before: Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), before);
    }

    #[test]
    fn whitespace_of_an_embedded_payload_is_normalised() {
        let text = "{\"payload\": {\n\t\"a\" : [ 1 ,\r\n 2 ] , \"b\": { } }}";
        assert_eq!(
            pretty(text),
            "{\n  \"payload\": {\n    \"a\": [\n      1,\n      2\n    ],\n    \"b\": {}\n  }\n}"
        );
    }
}
