//! What the HTTP handlers share.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use crate::kafka::Consumer;
use crate::merchant_login::MerchantLogin;
use crate::metrics::Metrics;
use crate::operator_token::OperatorToken;
use crate::session::SessionSigner;
use crate::throttle::LoginThrottle;
use crate::ws_slots::WsSlots;

#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub signer: Arc<SessionSigner>,
    /// None: operator login disabled.
    pub operator_token: Option<Arc<OperatorToken>>,
    pub merchant_login: Arc<MerchantLogin>,
    /// None: no sign-in is configured, so nobody could ask.
    pub webhook_health: Option<Arc<dyn transaction_store::WebhookHealthRepository>>,
    pub throttle: Arc<LoginThrottle>,
    pub consumer: Arc<Consumer>,
    pub results_topic: String,
    /// Idle timeout of a session (lifetime of one token).
    pub session_ttl: Duration,
    /// Absolute lifetime of a session from its sign-in.
    pub session_max_age: Duration,
    /// How often an open merchant stream re-checks its credential.
    pub session_revalidate: Duration,
    pub ws_slots: Arc<WsSlots>,
    pub trusted_proxies: Arc<service_runtime::client_ip::TrustedProxies>,
    /// Closes open WebSockets on shutdown.
    pub shutdown: CancellationToken,
}
