//! Helpers of the auth integration tests: signing keys of each family (made at test
//! time, never committed) and a JWKS server that counts fetches and can be stopped
//! like a crashed process.
#![allow(dead_code, clippy::unwrap_used)]

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A private key (for signing) and its public key PEM (for the gateway).
pub struct KeyPair {
    pub enc: EncodingKey,
    pub public_pem: String,
}

pub fn rsa_pair() -> KeyPair {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
    KeyPair {
        enc: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        public_pem: private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    }
}

pub fn rcgen_pair(alg: &'static rcgen::SignatureAlgorithm, ed: bool) -> KeyPair {
    let kp = rcgen::KeyPair::generate_for(alg).unwrap();
    let pem = kp.serialize_pem();
    KeyPair {
        enc: if ed {
            EncodingKey::from_ed_pem(pem.as_bytes()).unwrap()
        } else {
            EncodingKey::from_ec_pem(pem.as_bytes()).unwrap()
        },
        public_pem: kp.public_key_pem(),
    }
}

pub fn sign(
    alg: Algorithm,
    kid: Option<&str>,
    claims: &serde_json::Value,
    key: &EncodingKey,
) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_owned);
    encode(&h, claims, key).unwrap()
}

/// A JWKS server: counts fetches per path, can be stopped like a crashed process.
pub struct JwksServer {
    pub addr: std::net::SocketAddr,
    hits: Arc<Mutex<HashMap<String, u32>>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl JwksServer {
    pub fn start(doc: serde_json::Value) -> JwksServer {
        let hits: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let h = hits.clone();
        rt.spawn(async move {
            let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
                let h = h.clone();
                let doc = doc.clone();
                async move {
                    *h.lock()
                        .unwrap()
                        .entry(req.uri().path().to_string())
                        .or_default() += 1;
                    axum::Json(doc)
                }
            });
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = axum::serve(l, app).await;
        });
        JwksServer {
            addr,
            hits,
            rt: Some(rt),
        }
    }

    pub fn hits(&self, path: &str) -> u32 {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub fn stop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop();
    }
}
