//! Secrets never leave through the admin API: values under names that look like a
//! secret are replaced. Names of environment variables (`secret_env`) and files
//! (`keys_file`) are not secrets and are kept.

use serde_json::Value;

const SECRET_WORDS: &[&str] = &["secret", "password", "credential", "private"];

fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    if k.ends_with("_env") || k.ends_with("_file") || k.ends_with("_url") {
        return false;
    }
    // `token` as a word or a word's end (`x-api-token`, `accesstoken`), not `max_tokens`
    let token = k
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w.ends_with("token"));
    SECRET_WORDS.iter().any(|w| k.contains(w)) || token || k == "key" || k.ends_with("_key")
}

/// Replaces secret values in place, at any depth.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if is_secret(k) && !val.is_null() {
                    *val = Value::String("<redacted>".into());
                } else {
                    redact(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_names_kept() {
        let mut v = serde_json::json!({
            "plugins": [{"name": "jwt", "secret_env": "JWT_SECRET", "client_secret": "s3cr3t",
                         "keys_file": "keys.yaml", "tls": {"key": "/etc/k.pem", "password": "x"},
                         "refresh_token": "r", "x-api-token": "t", "max_tokens": 5}],
            "routes": [{"name": "r"}]
        });
        redact(&mut v);
        let p = &v["plugins"][0];
        assert_eq!(p["secret_env"], "JWT_SECRET");
        assert_eq!(p["keys_file"], "keys.yaml");
        assert_eq!(p["client_secret"], "<redacted>");
        assert_eq!(p["tls"]["password"], "<redacted>");
        assert_eq!(p["tls"]["key"], "<redacted>");
        assert_eq!(p["refresh_token"], "<redacted>");
        assert_eq!(p["x-api-token"], "<redacted>");
        assert_eq!(p["max_tokens"], 5);
        assert_eq!(v["routes"][0]["name"], "r");
    }
}
