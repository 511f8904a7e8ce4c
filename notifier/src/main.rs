use clap::Parser;
use notifier::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    service_runtime::telemetry::init();
    tracing::info!(?config, "starting notifier");
    let shutdown = service_runtime::shutdown::on_signal();
    let app = Application::build(config, &shutdown).await?;
    tracing::info!(http_port = app.http_port(), "notifier ready");
    app.run_until_stopped(shutdown).await?;
    Ok(())
}
