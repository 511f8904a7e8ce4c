//! One HTTP delivery attempt: POST the body with the Standard Webhooks
//! headers, within the attempt timeout, to a public address only (in
//! production), never following redirects.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use transaction_store::webhooks::{
    OUTCOME_CONNECT_ERROR, OUTCOME_HTTP_ERROR, OUTCOME_REFUSED, OUTCOME_SUCCESS, OUTCOME_TIMEOUT,
};

use crate::signing::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use crate::url_policy::{UrlError, UrlPolicy};

/// Most response-body bytes read (and thrown away) so the connection can
/// be reused; a longer body is cut off.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptOutcome {
    pub outcome: &'static str,
    pub status_code: Option<u16>,
    /// Short, for the merchant's delivery log; never the response body.
    pub error: Option<String>,
    pub duration: Duration,
}

impl AttemptOutcome {
    pub fn succeeded(&self) -> bool {
        self.outcome == OUTCOME_SUCCESS
    }
}

/// What a request needs besides the URL.
pub struct SignedRequest<'a> {
    pub event_id: &'a str,
    pub timestamp: i64,
    pub signature: &'a str,
    pub body: &'a str,
}

#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    policy: UrlPolicy,
    timeout: Duration,
}

/// Resolves like the system does, then refuses the name if any address is
/// not allowed: checked at every connection, so a name re-pointed at an
/// internal address after registration is refused too.
struct GuardedResolver {
    policy: UrlPolicy,
}

#[derive(Debug, thiserror::Error)]
#[error("delivery refused: {0}")]
struct Refused(UrlError);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let ips: Vec<_> = addrs.iter().map(SocketAddr::ip).collect();
            policy.check_addresses(&ips).map_err(|e| Box::new(Refused(e)) as Box<dyn StdError + Send + Sync>)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

impl Sender {
    pub fn new(policy: UrlPolicy, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment (HTTPS_PROXY) would resolve the
            // merchant's host itself, past the resolver's address check.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            .user_agent(concat!("gateway-webhooks/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Sender { client, policy, timeout })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub async fn send(&self, url: &str, request: SignedRequest<'_>) -> AttemptOutcome {
        let started = Instant::now();
        let done = |outcome, status_code, error: Option<String>| AttemptOutcome {
            outcome,
            status_code,
            error,
            duration: started.elapsed(),
        };
        // IP-literal hosts never reach the resolver: check them here.
        if let Err(e) = self.policy.check_syntax(url) {
            return done(OUTCOME_REFUSED, None, Some(e.to_string()));
        }
        let headers = [
            (HEADER_ID, request.event_id.to_owned()),
            (HEADER_TIMESTAMP, request.timestamp.to_string()),
            (HEADER_SIGNATURE, request.signature.to_owned()),
        ];
        let mut builder = self
            .client
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(request.body.to_owned());
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let exchange = async {
            let mut response = builder.send().await?;
            let status = response.status();
            let mut read = 0usize;
            while read < MAX_RESPONSE_BYTES {
                match response.chunk().await? {
                    Some(chunk) => read += chunk.len(),
                    None => break,
                }
            }
            Ok::<_, reqwest::Error>(status)
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => done(OUTCOME_TIMEOUT, None, Some(format!("no answer within {} ms", self.timeout.as_millis()))),
            Ok(Ok(status)) if status.is_success() => done(OUTCOME_SUCCESS, Some(status.as_u16()), None),
            Ok(Ok(status)) => {
                done(OUTCOME_HTTP_ERROR, Some(status.as_u16()), Some(format!("HTTP {}", status.as_u16())))
            }
            Ok(Err(e)) => classify(e, done),
        }
    }
}

fn classify(
    e: reqwest::Error,
    done: impl FnOnce(&'static str, Option<u16>, Option<String>) -> AttemptOutcome,
) -> AttemptOutcome {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<Refused>() {
            return done(OUTCOME_REFUSED, None, Some(refused.to_string()));
        }
        source = s.source();
    }
    if e.is_timeout() {
        done(OUTCOME_TIMEOUT, None, Some("timed out".into()))
    } else if e.is_connect() {
        done(OUTCOME_CONNECT_ERROR, None, Some("could not connect".into()))
    } else {
        done(OUTCOME_CONNECT_ERROR, None, Some("connection failed during the exchange".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> SignedRequest<'static> {
        SignedRequest { event_id: "evt_1", timestamp: 1, signature: "v1,x", body: "{}" }
    }

    #[tokio::test]
    async fn production_refuses_loopback_by_name_and_by_literal() {
        let sender = Sender::new(UrlPolicy::default(), Duration::from_secs(2)).unwrap();
        let by_name = sender.send("https://localhost:1/hook", request()).await;
        assert_eq!(by_name.outcome, OUTCOME_REFUSED, "{by_name:?}");
        let by_literal = sender.send("https://127.0.0.1:1/hook", request()).await;
        assert_eq!(by_literal.outcome, OUTCOME_REFUSED, "{by_literal:?}");
        let plain_http = sender.send("http://example.com/hook", request()).await;
        assert_eq!(plain_http.outcome, OUTCOME_REFUSED, "{plain_http:?}");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let sender = Sender::new(UrlPolicy { allow_loopback_http: true }, Duration::from_secs(2)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let outcome = sender.send(&format!("http://127.0.0.1:{port}/hook"), request()).await;
        assert_eq!(outcome.outcome, OUTCOME_CONNECT_ERROR, "{outcome:?}");
    }
}
