//! Just enough `application/x-www-form-urlencoded` decoding for what signatures cover:
//! Twilio's form parameters and the query parameters of the webhook URL.

/// The decoded `name=value` pairs of a form body or query string, in order. A pair without
/// `=` has an empty value; empty pairs (`a=1&&b=2`) are skipped.
pub(super) fn pairs(input: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (decode(&pair[..eq]), decode(&pair[eq + 1..])),
            None => (decode(pair), Vec::new()),
        })
        .collect()
}

/// The decoded value of the first query parameter called `name` in `url`.
pub(super) fn query_param(url: &str, name: &str) -> Option<Vec<u8>> {
    let (_, query) = url.split_once('?')?;
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    pairs(query.as_bytes())
        .into_iter()
        .find(|(key, _)| key == name.as_bytes())
        .map(|(_, value)| value)
}

/// Percent-decodes, with `+` as a space. A `%` not followed by two hex digits stays as it
/// is, as browsers and the `url` crate leave it.
fn decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex_digit(input.get(i + 1)), hex_digit(input.get(i + 2))) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    out
}

fn hex_digit(byte: Option<&u8>) -> Option<u8> {
    let digit = char::from(*byte?).to_digit(16)?;
    u8::try_from(digit).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_pairs(input: &str) -> Vec<(String, String)> {
        pairs(input.as_bytes())
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    #[test]
    fn pairs_are_percent_and_plus_decoded() {
        assert_eq!(
            text_pairs("From=%2B12349013030&Body=hello+w%C3%B6rld&flag&&x=%zz%4"),
            [
                ("From".into(), "+12349013030".into()),
                ("Body".into(), "hello wörld".into()),
                ("flag".into(), String::new()),
                ("x".into(), "%zz%4".into()),
            ]
        );
    }

    #[test]
    fn a_query_parameter_is_read_up_to_the_fragment() {
        let url = "https://h.example/p?a=1&token=t%2Fk&token=second#token=frag";
        assert_eq!(query_param(url, "token"), Some(b"t/k".to_vec()));
        assert_eq!(
            query_param("https://h.example/p?a=1#token=x", "token"),
            None
        );
        assert_eq!(query_param("https://h.example/p", "token"), None);
    }
}
