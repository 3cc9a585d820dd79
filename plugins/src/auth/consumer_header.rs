//! The request header that carries the authenticated consumer's name to the upstream
//! (`consumer_header`, default `X-User-Id`, as `jwt` forwards `sub`). A copy sent by
//! the client is always removed, whatever the outcome, so an upstream never sees a
//! forged one.

use crate::SettingsError;
use http::{HeaderName, HeaderValue};
use pingora_http::RequestHeader;

/// The default `consumer_header` setting.
pub(crate) fn default_consumer_header() -> String {
    "X-User-Id".into()
}

/// A parsed `consumer_header` setting (empty: nothing is sent).
#[derive(Debug, Clone)]
pub(crate) struct ConsumerHeader(Option<HeaderName>);

impl ConsumerHeader {
    /// Parses the setting; a bad header name is an error at `consumer_header`.
    pub(crate) fn parse(s: &str) -> Result<Self, SettingsError> {
        match s.trim() {
            "" => Ok(Self(None)),
            h => HeaderName::try_from(h).map(|n| Self(Some(n))).map_err(|_| {
                SettingsError::at("consumer_header", format!("`{h}` is not a header name"))
            }),
        }
    }

    /// Removes any client-sent copy.
    pub(crate) fn strip(&self, req: &mut RequestHeader) {
        if let Some(h) = &self.0 {
            req.remove_header(h);
        }
    }

    /// Sets the consumer's name (a name that is not a valid header value is not sent).
    pub(crate) fn set(&self, req: &mut RequestHeader, consumer: &str) {
        if let (Some(h), Ok(v)) = (&self.0, HeaderValue::from_str(consumer)) {
            let _ = req.insert_header(h.clone(), v);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn strips_then_sets() {
        let h = ConsumerHeader::parse(&default_consumer_header()).unwrap();
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("x-user-id", "forged").unwrap();
        h.strip(&mut req);
        assert!(req.headers.get("x-user-id").is_none());
        h.set(&mut req, "alice");
        assert_eq!(req.headers["x-user-id"], "alice");
        h.set(&mut req, "bad\nname");
        assert_eq!(req.headers["x-user-id"], "alice");
        let none = ConsumerHeader::parse("").unwrap();
        none.set(&mut req, "bob");
        assert_eq!(req.headers["x-user-id"], "alice");
        assert!(ConsumerHeader::parse("a b").is_err());
    }
}
