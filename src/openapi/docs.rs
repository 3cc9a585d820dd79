//! `/docs`: the interactive API page (Swagger UI, vendored from the npm package
//! `swagger-ui-dist`, see `assets/README.md`), built into the binary and pointed at
//! `/openapi.json`.

/// A file of the page: its content type and bytes.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("assets/index.html"),
};

/// The asset at a request path, when it is one of the page's (`/docs`, `/docs/`,
/// `/docs/index.html`, `/docs/swagger-ui-bundle.js`, `/docs/swagger-ui.css`,
/// `/docs/init.js`). `None` for any other path.
pub fn asset(path: &str) -> Option<Asset> {
    let name = match path.strip_prefix("/docs")? {
        "" | "/" | "/index.html" => return Some(INDEX),
        rest => rest.strip_prefix('/')?,
    };
    Some(match name {
        "swagger-ui-bundle.js" => Asset {
            content_type: "application/javascript; charset=utf-8",
            body: include_bytes!("assets/swagger-ui-bundle.js"),
        },
        "swagger-ui.css" => Asset {
            content_type: "text/css; charset=utf-8",
            body: include_bytes!("assets/swagger-ui.css"),
        },
        "init.js" => Asset {
            content_type: "application/javascript; charset=utf-8",
            body: include_bytes!("assets/init.js"),
        },
        _ => return None,
    })
}

/// Whether a request path belongs to the page (`/docs` or below): answered by the
/// gateway (404 for an unknown file), never routed.
pub fn is_docs_path(path: &str) -> bool {
    path == "/docs" || path.starts_with("/docs/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_by_path() {
        assert!(asset("/docs").is_some_and(|a| a.content_type.starts_with("text/html")));
        assert!(asset("/docs/").is_some());
        assert!(asset("/docs/swagger-ui-bundle.js").is_some_and(|a| a.body.len() > 100_000));
        assert!(asset("/docs/swagger-ui.css").is_some());
        assert!(asset("/docs/nope.js").is_none());
        assert!(asset("/docsx").is_none());
        assert!(is_docs_path("/docs/x") && !is_docs_path("/docsx"));
    }
}
