//! `orderflow loadgen`: drives a running server over HTTP as its customers would. It logs in
//! as the admin, seeds products with stock, registers customers, then places orders, at a fixed
//! rate or as fast as `--connections` concurrent clients can, and (end to end) long-polls each
//! order until the saga decides it.
//!
//! Latencies go into HdrHistograms. At a fixed rate every order has an *intended* start time
//! and its latencies count from there, not from when the request actually went out, so a
//! stalled server is charged for the requests it kept waiting (coordinated omission).
//!
//! `--compare-bare-poem` first runs the same POSTs against a bare poem handler in this process
//! (see `bare_poem`), so the API's POST throughput is reported against a yardstick measured on
//! the same machine in the same run.

mod bare_poem;
mod client;
mod latency;
mod plot;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use serde::Serialize;

use self::client::{Api, order_body};
use self::latency::{LatencySummary, Timeline};
use super::progress_bar;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// POST each order, then long-poll it until the saga confirms or rejects it.
    EndToEnd,
    /// Only POST: measures the API's intake.
    PostOnly,
}

#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// The server's base URL. Run it with rate limits off for a benchmark (see
    /// docs/benchmarks.md): every loadgen client comes from one IP.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The admin's email (seeds products and stock).
    #[arg(long, env = "ORDERFLOW_ADMIN_EMAIL")]
    pub admin_email: String,
    /// The admin's password.
    #[arg(long, env = "ORDERFLOW_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: String,
    #[arg(long, value_enum, default_value_t = Mode::EndToEnd)]
    pub mode: Mode,
    /// Orders to place.
    #[arg(long, default_value_t = 5_000)]
    pub orders: u64,
    /// Orders per second; 0 places them as fast as the connections allow.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Concurrent clients sending POST /orders.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// End to end: orders POSTed but not yet decided, at most (each holds a long-poll).
    #[arg(long, default_value_t = 2_048)]
    pub max_in_flight: usize,
    /// Customers to register; orders go round-robin over them.
    #[arg(long, default_value_t = 50)]
    pub users: usize,
    /// Products to seed; orders go round-robin over them.
    #[arg(long, default_value_t = 20)]
    pub products: usize,
    /// How long to wait for one order's outcome before counting it as failed.
    #[arg(long, default_value_t = 60)]
    pub patience_seconds: u64,
    /// Before the run, send the same POSTs to a bare poem handler and report the ratio.
    #[arg(long)]
    pub compare_bare_poem: bool,
    /// Write the report as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the latency distribution and throughput over time as an SVG plot here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// Units of stock seeded per product: enough that no order of the run is refused for stock.
const STOCK_PER_PRODUCT: u32 = 10_000_000;

/// What one run against one target measured.
struct Phase {
    name: String,
    /// Until the last order was decided (or, POST only, answered).
    seconds: f64,
    /// Until the last POST was answered.
    post_seconds: f64,
    tally: Tally,
}

#[derive(Serialize)]
struct PhaseReport {
    name: String,
    seconds: f64,
    posts_accepted_per_second: f64,
    confirmed_per_second: f64,
    post_statuses: BTreeMap<String, u64>,
    outcomes: BTreeMap<String, u64>,
    post_latency: LatencySummary,
    /// Intended start to CONFIRMED, for confirmed orders.
    post_to_confirmed_latency: LatencySummary,
    accepted_per_second_over_time: Vec<u64>,
    confirmed_per_second_over_time: Vec<u64>,
    first_error: Option<String>,
}

impl Phase {
    fn accepted(&self) -> u64 {
        self.tally.post_statuses.get("202").copied().unwrap_or(0)
    }

    fn confirmed(&self) -> u64 {
        self.tally.outcomes.get("CONFIRMED").copied().unwrap_or(0)
    }

    fn report(&self) -> PhaseReport {
        let per_second = |count: u64, seconds: f64| count as f64 / seconds.max(1e-9);
        PhaseReport {
            name: self.name.clone(),
            seconds: self.seconds,
            posts_accepted_per_second: per_second(self.accepted(), self.post_seconds),
            confirmed_per_second: per_second(self.confirmed(), self.seconds),
            post_statuses: self.tally.post_statuses.clone(),
            outcomes: self.tally.outcomes.clone(),
            post_latency: LatencySummary::of(&self.tally.post),
            post_to_confirmed_latency: LatencySummary::of(&self.tally.outcome),
            accepted_per_second_over_time: self.tally.accepted.per_second().to_vec(),
            confirmed_per_second_over_time: self.tally.decided.per_second().to_vec(),
            first_error: self.tally.first_error.clone(),
        }
    }
}

#[derive(Serialize)]
struct Report {
    url: String,
    mode: Mode,
    orders: u64,
    target_rate: u64,
    connections: usize,
    cpus: usize,
    phases: Vec<PhaseReport>,
    /// The API's accepted POSTs per second over the bare poem handler's.
    post_throughput_vs_bare_poem: Option<f64>,
}

/// The load of one phase.
#[derive(Clone)]
struct Plan {
    orders: u64,
    rate: u64,
    connections: usize,
    max_in_flight: usize,
    await_outcomes: bool,
    patience: Duration,
}

pub fn run(args: &LoadgenArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.users == 0 || args.products == 0 || args.max_in_flight == 0 {
        bail!("--connections, --users, --products and --max-in-flight must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("loadgen")
        .enable_all()
        .build()
        .context("starting the loadgen runtime")?;
    let bare = if args.compare_bare_poem {
        Some(bare_poem::BarePoem::start()?)
    } else {
        None
    };
    runtime.block_on(drive(args, bare.as_ref().map(|bare| bare.url.clone())))
}

async fn drive(args: &LoadgenArgs, bare_url: Option<String>) -> anyhow::Result<()> {
    let connections = args.connections + args.max_in_flight;
    let api = Api::new(&args.url, connections)?;
    let (tokens, skus) = seed(&api, args).await?;
    let plan = Plan {
        orders: args.orders,
        rate: args.rate,
        connections: args.connections,
        max_in_flight: args.max_in_flight,
        await_outcomes: args.mode == Mode::EndToEnd,
        patience: Duration::from_secs(args.patience_seconds),
    };
    let mut phases = Vec::new();
    if let Some(url) = bare_url {
        let bare = Api::new(&url, connections)?;
        let bare_plan = Plan {
            await_outcomes: false,
            ..plan.clone()
        };
        phases.push(run_phase("bare poem handler", &bare, &tokens, &skus, &bare_plan).await);
    }
    let name = match args.mode {
        Mode::EndToEnd => "orderflow end to end",
        Mode::PostOnly => "orderflow POST only",
    };
    phases.push(run_phase(name, &api, &tokens, &skus, &plan).await);

    let ratio = (phases.len() == 2).then(|| {
        let bare = phases[0].report().posts_accepted_per_second;
        phases[1].report().posts_accepted_per_second / bare.max(1e-9)
    });
    print_summary(&phases, ratio);
    let report = Report {
        url: args.url.clone(),
        mode: args.mode,
        orders: args.orders,
        target_rate: args.rate,
        connections: args.connections,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        phases: phases.iter().map(Phase::report).collect(),
        post_throughput_vs_bare_poem: ratio,
    };
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing the report to {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        write_plot(path, args, &phases)?;
    }
    let last = phases.last().expect("at least one phase");
    if last.accepted() == 0 {
        bail!(
            "no order was accepted; first error: {}",
            last.tally.first_error.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}

/// Logs in as the admin, seeds the products and their stock, registers the customers, and
/// waits until the views show every product (so no order races its product's creation).
async fn seed(api: &Api, args: &LoadgenArgs) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let admin = api.login(&args.admin_email, &args.admin_password).await?;
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let run_id = &run_id[run_id.len() - 8..];
    let skus: Vec<String> = (0..args.products)
        .map(|index| format!("LG-{}-{index}", run_id.to_uppercase()))
        .collect();
    let progress = progress_bar((args.products + args.users) as u64, "seeding");
    for sku in &skus {
        api.seed_product(&admin, sku, STOCK_PER_PRODUCT).await?;
        progress.inc(1);
    }
    let mut tokens = Vec::with_capacity(args.users);
    for index in 0..args.users {
        let email = format!("loadgen-{run_id}-{index}@example.com");
        tokens.push(api.register(&email, "loadgen password").await?);
        progress.inc(1);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for sku in &skus {
        while !api.product_ready(&admin, sku, STOCK_PER_PRODUCT).await {
            if Instant::now() > deadline {
                bail!("{sku} did not reach the catalog and inventory views within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The saga prices orders from its own copy of the catalog, which the views above do not
    // show: wait until the server has caught up everywhere (on a busy server, up to 30 s).
    if !api.wait_until_idle(Duration::from_secs(30)).await {
        eprintln!(
            "the server never reported zero lag; its catalog copies may still be catching up"
        );
    }
    progress.finish_and_clear();
    println!(
        "seeded {} products and {} customers on {}",
        skus.len(),
        tokens.len(),
        api.base()
    );
    Ok((tokens, skus))
}

/// Everything a phase counts, shared by its clients while it runs.
struct Tally {
    post: Histogram<u64>,
    outcome: Histogram<u64>,
    post_statuses: BTreeMap<String, u64>,
    outcomes: BTreeMap<String, u64>,
    accepted: Timeline,
    decided: Timeline,
    first_error: Option<String>,
    last_completion: Instant,
    /// When the last POST of the phase was answered: POST throughput counts up to here.
    last_post: Instant,
}

impl Tally {
    fn new(started: Instant) -> Self {
        Self {
            post: latency::histogram(),
            outcome: latency::histogram(),
            post_statuses: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            accepted: Timeline::new(started),
            decided: Timeline::new(started),
            first_error: None,
            last_completion: started,
            last_post: started,
        }
    }

    fn error(&mut self, error: String) {
        self.first_error.get_or_insert(error);
    }
}

async fn run_phase(
    name: &str,
    api: &Api,
    tokens: &[String],
    skus: &[String],
    plan: &Plan,
) -> Phase {
    let started = Instant::now();
    let tally = Arc::new(Mutex::new(Tally::new(started)));
    let bodies: Arc<Vec<serde_json::Value>> =
        Arc::new(skus.iter().map(|sku| order_body(sku)).collect());
    let tokens: Arc<Vec<String>> = Arc::new(tokens.to_vec());
    let in_flight = Arc::new(tokio::sync::Semaphore::new(plan.max_in_flight));
    let next = Arc::new(AtomicU64::new(0));
    let progress = progress_bar(plan.orders, name.to_string());
    let interval_nanos = (plan.rate > 0).then(|| 1_000_000_000 / plan.rate);
    let mut clients = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        let (api, tokens, bodies, tally, in_flight, next, progress, plan) = (
            api.clone(),
            tokens.clone(),
            bodies.clone(),
            tally.clone(),
            in_flight.clone(),
            next.clone(),
            progress.clone(),
            plan.clone(),
        );
        clients.push(tokio::spawn(async move {
            loop {
                let sequence = next.fetch_add(1, Ordering::Relaxed);
                if sequence >= plan.orders {
                    return;
                }
                // At a fixed rate, the schedule says when the order should have started, and
                // any wait after that (for the server or for a free in-flight slot) counts.
                let scheduled = interval_nanos
                    .map(|interval| started + Duration::from_nanos(sequence * interval));
                if let Some(at) = scheduled {
                    tokio::time::sleep_until(at.into()).await;
                }
                let permit = match plan.await_outcomes {
                    true => Some(
                        in_flight
                            .clone()
                            .acquire_owned()
                            .await
                            .expect("never closed"),
                    ),
                    false => None,
                };
                // As fast as possible, a client starts an order when it has a slot for it.
                let intended = scheduled.unwrap_or_else(Instant::now);
                let token = tokens[sequence as usize % tokens.len()].clone();
                let body = &bodies[(sequence as usize / tokens.len()) % bodies.len()];
                let key = uuid::Uuid::now_v7().to_string();
                let answer = api.place_order(&token, body, &key).await;
                let now = Instant::now();
                let accepted = {
                    let mut tally = tally.lock().expect("tally lock");
                    latency::record(&mut tally.post, now - intended);
                    tally.last_completion = now;
                    tally.last_post = now;
                    match answer {
                        Ok((202, accepted)) => {
                            *tally.post_statuses.entry("202".into()).or_default() += 1;
                            tally.accepted.mark(now);
                            Some(accepted)
                        }
                        Ok((status, body)) => {
                            *tally.post_statuses.entry(status.to_string()).or_default() += 1;
                            tally.error(format!("POST /orders answered {status}: {body}"));
                            None
                        }
                        Err(error) => {
                            *tally.post_statuses.entry("error".into()).or_default() += 1;
                            tally.error(format!("POST /orders failed: {error}"));
                            None
                        }
                    }
                };
                let (Some(accepted), Some(permit)) = (accepted, permit) else {
                    progress.inc(1);
                    continue;
                };
                let (api, tally, progress) = (api.clone(), tally.clone(), progress.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let order_id = accepted["order_id"].as_str().unwrap_or_default();
                    let position = accepted["position"].as_str().unwrap_or_default();
                    let outcome = api
                        .await_outcome(&token, order_id, position, plan.patience)
                        .await;
                    let now = Instant::now();
                    let mut tally = tally.lock().expect("tally lock");
                    tally.last_completion = now;
                    match outcome {
                        Ok(status) => {
                            if status == "CONFIRMED" {
                                latency::record(&mut tally.outcome, now - intended);
                                tally.decided.mark(now);
                            }
                            *tally.outcomes.entry(status).or_default() += 1;
                        }
                        Err(error) => {
                            *tally.outcomes.entry("undecided".into()).or_default() += 1;
                            tally.error(format!("order {order_id}: {error}"));
                        }
                    }
                    progress.inc(1);
                });
            }
        }));
    }
    for client in clients {
        let _ = client.await;
    }
    // Every waiter holds a permit: holding them all means every order is decided.
    let _all = in_flight
        .acquire_many(u32::try_from(plan.max_in_flight).unwrap_or(u32::MAX))
        .await
        .expect("never closed");
    progress.finish_and_clear();
    // A finished waiter may not have dropped its handle on the tally yet: take the contents.
    let tally = std::mem::replace(&mut *tally.lock().expect("tally lock"), Tally::new(started));
    Phase {
        name: name.to_string(),
        seconds: (tally.last_completion - started).as_secs_f64(),
        post_seconds: (tally.last_post - started).as_secs_f64(),
        tally,
    }
}

fn print_summary(phases: &[Phase], ratio: Option<f64>) {
    for phase in phases {
        let report = phase.report();
        println!("{}: {:.1} s", report.name, report.seconds);
        println!(
            "  POST /orders: {:.0} accepted/s; statuses {:?}",
            report.posts_accepted_per_second, report.post_statuses
        );
        let post = &report.post_latency;
        println!(
            "  POST latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            post.p50_ms, post.p90_ms, post.p99_ms, post.p999_ms, post.max_ms
        );
        if !report.outcomes.is_empty() {
            let settle = &report.post_to_confirmed_latency;
            println!(
                "  confirmed: {:.0}/s; outcomes {:?}",
                report.confirmed_per_second, report.outcomes
            );
            println!(
                "  POST → CONFIRMED ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
                settle.p50_ms, settle.p90_ms, settle.p99_ms, settle.p999_ms, settle.max_ms
            );
        }
        if let Some(error) = &report.first_error {
            println!("  first error: {error}");
        }
    }
    if let Some(ratio) = ratio {
        println!("POST throughput vs the bare poem handler: {ratio:.2}×");
    }
}

fn write_plot(path: &PathBuf, args: &LoadgenArgs, phases: &[Phase]) -> anyhow::Result<()> {
    let mut latencies: Vec<(String, &Histogram<u64>)> = Vec::new();
    let mut throughput: Vec<(String, &[u64])> = Vec::new();
    for phase in phases {
        latencies.push((format!("{}: POST", phase.name), &phase.tally.post));
        throughput.push((
            format!("{}: accepted", phase.name),
            phase.tally.accepted.per_second(),
        ));
        if !phase.tally.outcome.is_empty() {
            latencies.push((
                format!("{}: POST → CONFIRMED", phase.name),
                &phase.tally.outcome,
            ));
            throughput.push((
                format!("{}: confirmed", phase.name),
                phase.tally.decided.per_second(),
            ));
        }
    }
    let rate = match args.rate {
        0 => "as fast as possible".to_string(),
        rate => format!("{rate} orders/s"),
    };
    let title = format!(
        "orderflow loadgen: {} orders, {rate}, {} connections",
        args.orders, args.connections
    );
    let latencies: Vec<(&str, &Histogram<u64>)> = latencies
        .iter()
        .map(|(name, histogram)| (name.as_str(), *histogram))
        .collect();
    let throughput: Vec<(&str, &[u64])> = throughput
        .iter()
        .map(|(name, series)| (name.as_str(), *series))
        .collect();
    std::fs::write(path, plot::render(&title, &latencies, &throughput))
        .with_context(|| format!("writing the plot to {}", path.display()))
}
