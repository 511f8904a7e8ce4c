use api::cli::{run_accounts, run_cvv_keys, run_migrate, Cli, Command};
use api::Application;
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    service_runtime::telemetry::init();
    match cli.command {
        Command::Serve(config) => serve(*config).await,
        Command::Accounts(args) => Ok(run_accounts(args, &mut std::io::stdout().lock()).await?),
        Command::Migrate(args) => Ok(run_migrate(args).await?),
        Command::CvvKeys(command) => Ok(run_cvv_keys(command, &mut std::io::stdout().lock())?),
    }
}

async fn serve(config: api::Config) -> anyhow::Result<()> {
    tracing::info!(?config, "starting api");
    let shutdown = service_runtime::shutdown::on_signal();
    let app = Application::build(config, &shutdown).await?;
    tracing::info!(http_port = app.http_port(), "api ready");
    app.run_until_stopped(shutdown).await?;
    Ok(())
}
