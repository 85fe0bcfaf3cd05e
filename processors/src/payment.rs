//! Payments, keyed by order id: charges and refunds through a [`PaymentProvider`], with retries.
//!
//! The processor never calls the provider. It writes a [`ProviderRequest`] to an internal topic;
//! the runtime's effect executor calls the provider ([`PaymentEffect`]) and writes the
//! [`ProviderResult`] back; the processor turns it into payment events. Transient failures and
//! timeouts are retried with exponential backoff and jitter on durable timers, without
//! blocking the partition; after the last attempt the payment fails.
//!
//! Never charged twice: one charge per order and charge attempt, identified by an idempotency
//! key that every provider call for it carries — retries of a timed-out call reuse the key, so
//! a provider that already charged returns the first outcome instead of charging again. A
//! duplicate Charge command (same key) is ignored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use orderflow_runtime::{
    EffectHandler, FiredTimer, LogRecord, ProcessError, Processor, ProcessorContext, Record,
    TimerKind,
};
use orderflow_schemas::envelope::{Envelope, Message};
use orderflow_schemas::ids::{OrderId, PaymentId};
use orderflow_schemas::messages::payment_commands::PaymentCommand;
use orderflow_schemas::messages::payment_events::{
    PaymentEvent, PaymentFailed, PaymentInitiated, PaymentRefunded, PaymentSucceeded,
};
use orderflow_schemas::money::Money;
use orderflow_state_stores::KeyValueStore;
use serde::{Deserialize, Serialize};

use crate::wire::Origin;

/// order id -> payment.
pub const PAYMENT_STORE: &str = "payments";
/// Internal topic of provider calls to make.
pub const PROVIDER_REQUESTS_TOPIC: &str = "orderflow-payment-provider-requests";
/// Internal topic of provider outcomes.
pub const PROVIDER_RESULTS_TOPIC: &str = "orderflow-payment-provider-results";
pub const PAYMENT_EVENTS_SINK: &str = "payment-events-sink";
pub const PROVIDER_REQUESTS_SINK: &str = "payment-provider-requests-sink";

/// Retry settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct PaymentConfig {
    /// Provider calls per charge before it fails (the first call included).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles per attempt.
    pub backoff_initial_ms: i64,
    /// Longest delay between retries.
    pub backoff_max_ms: i64,
    /// An ambiguous outcome (timeout, transient error) may hide a charge that happened. After
    /// `max-attempts` (or once the order ended) no charge call is made; the provider is asked
    /// what became of the calls made ([`ProviderOperation::Lookup`], never charging) until it
    /// can tell or this many calls were made in all; then an operator must reconcile.
    pub reconcile_attempts: u32,
}

impl Default for PaymentConfig {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            backoff_initial_ms: 200,
            backoff_max_ms: 30_000,
            reconcile_attempts: 50,
        }
    }
}

impl PaymentConfig {
    /// Delay before provider call `attempt + 1`: exponential, with ±20% jitter derived from the
    /// order and attempt, so a replay schedules exactly the same retry.
    pub fn retry_delay_ms(&self, order_id: &OrderId, attempt: u32) -> i64 {
        let exponent = attempt.saturating_sub(1).min(30);
        let base = self
            .backoff_initial_ms
            .saturating_mul(1i64 << exponent)
            .min(self.backoff_max_ms)
            .max(1);
        let seed = order_id
            .as_uuid()
            .as_bytes()
            .iter()
            .fold(u64::from(attempt), |hash, byte| {
                hash.wrapping_mul(0x100_0000_01b3) ^ u64::from(*byte)
            });
        let jitter_per_mille = (seed % 401) as i64 - 200; // -200..=200, i.e. ±20%
        (base + base * jitter_per_mille / 1_000).max(1)
    }
}

/// What a provider call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderOperation {
    Charge,
    Refund,
    /// What became of the charge with this idempotency key? Never charges (see
    /// [`PaymentProvider::lookup`]).
    Lookup,
}

/// One provider call to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRequest {
    pub operation: ProviderOperation,
    pub order_id: OrderId,
    pub payment_id: PaymentId,
    pub amount: Money,
    /// Charges only.
    pub payment_method_token: Option<String>,
    /// The same for every retry of one charge (or refund).
    pub idempotency_key: String,
    /// Provider call number, from 1.
    pub attempt: u32,
    /// Refunds: the provider's reference of the charge being refunded.
    #[serde(default)]
    pub provider_reference: Option<String>,
    pub origin: Origin,
}

/// What the provider said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ProviderOutcome {
    Approved {
        reference: String,
    },
    Declined {
        code: String,
        message: String,
    },
    InsufficientFunds,
    /// Worth retrying: the provider failed before deciding (5xx, rate limit, network).
    Transient {
        message: String,
    },
    /// No answer in time: the call may or may not have happened; retry with the same key.
    Timeout,
}

impl ProviderOutcome {
    fn is_retriable(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::Timeout)
    }

    /// A definite no (declined, insufficient funds).
    pub fn is_definite_refusal(&self) -> bool {
        matches!(self, Self::Declined { .. } | Self::InsufficientFunds)
    }
}

/// A provider call and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderResult {
    pub request: ProviderRequest,
    pub outcome: ProviderOutcome,
}

/// A payment provider. Implementations do I/O and run on the effect executor's thread.
pub trait PaymentProvider: Send + Sync + 'static {
    fn charge(&self, request: &ProviderRequest) -> ProviderOutcome;
    fn refund(&self, request: &ProviderRequest) -> ProviderOutcome;
    /// What became of the charge calls made with `request.idempotency_key`, **without ever
    /// charging**: `Approved` with the charge's reference if one of them charged; `Declined`
    /// with code [`NO_CHARGE`] if none did (and, where the provider allows, none can any
    /// more); `Transient` or `Timeout` if it cannot tell now.
    fn lookup(&self, request: &ProviderRequest) -> ProviderOutcome;
}

/// The decline code of a lookup that found no charge.
pub const NO_CHARGE: &str = "no_charge";

/// The effect handler that calls a provider for each request record.
pub struct PaymentEffect {
    provider: Arc<dyn PaymentProvider>,
}

impl std::fmt::Debug for PaymentEffect {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PaymentEffect")
    }
}

impl PaymentEffect {
    pub fn new(provider: Arc<dyn PaymentProvider>) -> Self {
        Self { provider }
    }
}

impl EffectHandler for PaymentEffect {
    fn execute(&self, request: &LogRecord) -> Result<Option<LogRecord>, String> {
        let value = request.value.as_deref().ok_or("the request has no value")?;
        let provider_request: ProviderRequest =
            serde_json::from_slice(value).map_err(|error| format!("provider request: {error}"))?;
        let outcome = match provider_request.operation {
            ProviderOperation::Charge => self.provider.charge(&provider_request),
            ProviderOperation::Refund => self.provider.refund(&provider_request),
            ProviderOperation::Lookup => self.provider.lookup(&provider_request),
        };
        let result = ProviderResult {
            request: provider_request,
            outcome,
        };
        let mut record = LogRecord::new(
            request.key.clone(),
            Some(serde_json::to_vec(&result).map_err(|error| error.to_string())?),
            request.timestamp,
        );
        record.headers = request.headers.clone();
        Ok(Some(record))
    }
}

/// The simulated provider (the default): the outcome is decided by the payment method token.
///
/// | token | outcome |
/// | --- | --- |
/// | `tok_decline` | declined (`card_declined`) |
/// | `tok_insufficient_funds` | insufficient funds |
/// | `tok_transient` | a transient error, every time |
/// | `tok_timeout` | a timeout, every time |
/// | `tok_flaky` | a transient error on calls 1 and 2, then approved |
/// | `tok_lost_answer` | charges on the first call, but every charge call answers with a timeout (the answer was lost on the way back); a lookup finds the charge |
/// | anything else | approved |
///
/// It keeps a ledger by idempotency key, as real providers do: a key that was already decided
/// returns the first outcome and charges nothing more.
#[derive(Debug, Default)]
pub struct SimulatedProvider {
    ledger: Mutex<HashMap<String, ProviderOutcome>>,
    charges: Mutex<HashMap<OrderId, Vec<Money>>>,
    refunds: Mutex<HashMap<OrderId, Vec<Money>>>,
    /// Where decisions are appended, as a real provider's records would be: outside the
    /// platform's own database, so they survive the platform's crashes.
    journal: Option<Mutex<std::fs::File>>,
    /// Pretend network latency per call.
    latency: std::time::Duration,
}

/// One line of the simulated provider's journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JournalEntry {
    idempotency_key: String,
    operation: ProviderOperation,
    order_id: OrderId,
    amount: Money,
    outcome: ProviderOutcome,
}

impl SimulatedProvider {
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider whose decisions are journaled (fsynced) in `path` and reloaded from it, so it
    /// remembers every idempotency key across restarts of the process that drives it.
    pub fn with_journal(
        path: &std::path::Path,
        latency: std::time::Duration,
    ) -> std::io::Result<Self> {
        use std::io::BufRead;
        let provider = Self {
            latency,
            ..Self::default()
        };
        if path.exists() {
            let file = std::fs::File::open(path)?;
            for line in std::io::BufReader::new(file).lines() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                // A torn last line (a crash while appending) was never acknowledged: skip it.
                let Ok(entry) = serde_json::from_str::<JournalEntry>(&line) else {
                    continue;
                };
                provider.remember(&entry);
            }
        }
        let journal = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            journal: Some(Mutex::new(journal)),
            ..provider
        })
    }

    fn remember(&self, entry: &JournalEntry) {
        let mut ledger = self.ledger.lock().expect("ledger lock poisoned");
        self.remember_locked(&mut ledger, entry);
    }

    fn remember_locked(&self, ledger: &mut HashMap<String, ProviderOutcome>, entry: &JournalEntry) {
        if matches!(entry.outcome, ProviderOutcome::Approved { .. }) {
            let book = match entry.operation {
                ProviderOperation::Charge => &self.charges,
                ProviderOperation::Refund => &self.refunds,
                ProviderOperation::Lookup => unreachable!("lookups decide nothing"),
            };
            book.lock()
                .expect("ledger lock poisoned")
                .entry(entry.order_id)
                .or_default()
                .push(entry.amount);
        }
        ledger.insert(entry.idempotency_key.clone(), entry.outcome.clone());
    }

    /// Every amount actually charged for an order.
    pub fn charges_of(&self, order_id: &OrderId) -> Vec<Money> {
        self.charges
            .lock()
            .expect("ledger lock poisoned")
            .get(order_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Every amount actually refunded for an order.
    pub fn refunds_of(&self, order_id: &OrderId) -> Vec<Money> {
        self.refunds
            .lock()
            .expect("ledger lock poisoned")
            .get(order_id)
            .cloned()
            .unwrap_or_default()
    }

    fn decide(&self, request: &ProviderRequest, outcome: ProviderOutcome) -> ProviderOutcome {
        if !self.latency.is_zero() {
            std::thread::sleep(self.latency);
        }
        // One decision at a time, so two calls with one key can never both charge.
        let mut ledger = self.ledger.lock().expect("ledger lock poisoned");
        if let Some(first) = ledger.get(&request.idempotency_key) {
            return first.clone();
        }
        if outcome.is_retriable() {
            return outcome;
        }
        let entry = JournalEntry {
            idempotency_key: request.idempotency_key.clone(),
            operation: request.operation,
            order_id: request.order_id,
            amount: request.amount,
            outcome: outcome.clone(),
        };
        if let Some(journal) = &self.journal {
            use std::io::Write;
            let mut file = journal.lock().expect("journal lock poisoned");
            let mut line = serde_json::to_vec(&entry).expect("journal entries serialize");
            line.push(b'\n');
            // The decision is durable before it is answered, as a real provider's would be.
            if let Err(error) = file.write_all(&line).and_then(|()| file.sync_data()) {
                return ProviderOutcome::Transient {
                    message: format!("simulated provider journal: {error}"),
                };
            }
        }
        self.remember_locked(&mut ledger, &entry);
        outcome
    }
}

impl PaymentProvider for SimulatedProvider {
    fn charge(&self, request: &ProviderRequest) -> ProviderOutcome {
        let token = request.payment_method_token.as_deref().unwrap_or_default();
        let outcome = match token {
            "tok_decline" => ProviderOutcome::Declined {
                code: "card_declined".to_string(),
                message: "the card was declined".to_string(),
            },
            "tok_insufficient_funds" => ProviderOutcome::InsufficientFunds,
            "tok_transient" => ProviderOutcome::Transient {
                message: "simulated provider error".to_string(),
            },
            "tok_timeout" => ProviderOutcome::Timeout,
            "tok_flaky" if request.attempt <= 2 => ProviderOutcome::Transient {
                message: "simulated flaky provider".to_string(),
            },
            "tok_lost_answer" => {
                self.decide(
                    request,
                    ProviderOutcome::Approved {
                        reference: format!("sim_ch_{}", request.idempotency_key),
                    },
                );
                return ProviderOutcome::Timeout;
            }
            _ => ProviderOutcome::Approved {
                reference: format!("sim_ch_{}", request.idempotency_key),
            },
        };
        self.decide(request, outcome)
    }

    fn refund(&self, request: &ProviderRequest) -> ProviderOutcome {
        let outcome = ProviderOutcome::Approved {
            reference: format!("sim_re_{}", request.idempotency_key),
        };
        self.decide(request, outcome)
    }

    fn lookup(&self, request: &ProviderRequest) -> ProviderOutcome {
        if !self.latency.is_zero() {
            std::thread::sleep(self.latency);
        }
        // Under the ledger's lock, as a decision is: a lookup sees a charge wholly or not at all.
        let ledger = self.ledger.lock().expect("ledger lock poisoned");
        match ledger.get(&request.idempotency_key) {
            Some(approved @ ProviderOutcome::Approved { .. }) => approved.clone(),
            _ => ProviderOutcome::Declined {
                code: NO_CHARGE.to_string(),
                message: "no charge was made with this idempotency key".to_string(),
            },
        }
    }
}

/// Where one order's payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
}

/// Where one order's refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    None,
    Pending,
    Refunded,
    /// The provider refused the refund for good: an operator must act (logged as an error).
    Failed,
}

/// One order's payment, in the `payments` store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub charge: ProviderRequest,
    pub status: PaymentStatus,
    pub provider_reference: Option<String>,
    pub refund: Option<ProviderRequest>,
    pub refund_status: RefundStatus,
    /// The saga no longer waits for this charge: PaymentFailed was emitted (after
    /// `max-attempts` calls without a definite answer), or the order ended first
    /// (`CancelCharge`). From then on no charge call is made; the provider is only asked what
    /// became of the calls already made ([`ProviderOperation::Lookup`]), and a charge found is
    /// reported as succeeded, for the saga to refund. (The name predates `CancelCharge`; the
    /// field keeps it so stored records still decode.)
    #[serde(default)]
    pub failure_reported: bool,
}

/// The payment processor's inputs.
#[derive(Debug, Clone)]
// Moved once per record between nodes; boxing would cost an allocation for no gain.
#[allow(clippy::large_enum_variant)]
pub enum PaymentInput {
    Command(Envelope<PaymentCommand>),
    Result(ProviderResult),
}

/// The payment processor's outputs.
#[derive(Debug, Clone)]
// Moved once per record between nodes; boxing would cost an allocation for no gain.
#[allow(clippy::large_enum_variant)]
pub enum PaymentOutput {
    Event(Envelope<PaymentEvent>),
    Request(ProviderRequest),
}

/// The payment processor.
#[derive(Debug, Clone, Default)]
pub struct PaymentProcessor {
    config: Arc<PaymentConfig>,
}

impl PaymentProcessor {
    pub fn new(config: Arc<PaymentConfig>) -> Self {
        Self { config }
    }
}

type Context<'a> = ProcessorContext<'a, String, PaymentOutput>;

fn emit_event(
    context: &mut Context<'_>,
    origin: &Origin,
    event: PaymentEvent,
    timestamp: i64,
) -> Result<(), ProcessError> {
    let key = event.partition_key();
    let envelope = origin.envelope(event, context.now_ms());
    context.forward_to(
        PAYMENT_EVENTS_SINK,
        Record::new(key, PaymentOutput::Event(envelope), timestamp),
    )
}

fn request_call(
    context: &mut Context<'_>,
    request: &ProviderRequest,
    timestamp: i64,
) -> Result<(), ProcessError> {
    context.forward_to(
        PROVIDER_REQUESTS_SINK,
        Record::new(
            request.order_id.to_string(),
            PaymentOutput::Request(request.clone()),
            timestamp,
        ),
    )
}

fn retry_timer_key(order_id: &OrderId, operation: ProviderOperation) -> Vec<u8> {
    format!("{order_id}:{operation:?}").into_bytes()
}

impl PaymentProcessor {
    fn load(
        context: &mut Context<'_>,
        order_id: &OrderId,
    ) -> Result<Option<PaymentRecord>, ProcessError> {
        Ok(context
            .key_value_store::<String, PaymentRecord>(PAYMENT_STORE)?
            .get(&order_id.to_string())?)
    }

    fn save(context: &mut Context<'_>, record: &PaymentRecord) -> Result<(), ProcessError> {
        Ok(context
            .key_value_store::<String, PaymentRecord>(PAYMENT_STORE)?
            .put(&record.charge.order_id.to_string(), record)?)
    }

    fn on_command(
        &self,
        context: &mut Context<'_>,
        envelope: Envelope<PaymentCommand>,
        timestamp: i64,
    ) -> Result<(), ProcessError> {
        let origin = Origin::caused_by(&envelope);
        match envelope.payload {
            PaymentCommand::Charge(charge) => {
                if let Some(existing) = Self::load(context, &charge.order_id)? {
                    if existing.charge.idempotency_key == charge.idempotency_key {
                        return Ok(()); // a duplicate command: the charge is already under way
                    }
                    return Err(ProcessError::invalid(format!(
                        "order {} already has a charge ({}); refusing a second one ({})",
                        charge.order_id, existing.charge.idempotency_key, charge.idempotency_key
                    )));
                }
                let request = ProviderRequest {
                    operation: ProviderOperation::Charge,
                    order_id: charge.order_id,
                    payment_id: charge.payment_id,
                    amount: charge.amount,
                    payment_method_token: Some(charge.payment_method_token),
                    idempotency_key: charge.idempotency_key.clone(),
                    attempt: 1,
                    provider_reference: None,
                    origin: origin.clone(),
                };
                Self::save(
                    context,
                    &PaymentRecord {
                        charge: request.clone(),
                        status: PaymentStatus::Pending,
                        provider_reference: None,
                        refund: None,
                        refund_status: RefundStatus::None,
                        failure_reported: false,
                    },
                )?;
                emit_event(
                    context,
                    &origin,
                    PaymentEvent::PaymentInitiated(PaymentInitiated {
                        order_id: charge.order_id,
                        payment_id: charge.payment_id,
                        amount: charge.amount,
                        attempt: 1,
                        idempotency_key: charge.idempotency_key,
                    }),
                    timestamp,
                )?;
                request_call(context, &request, timestamp)
            }
            PaymentCommand::CancelCharge(cancel) => {
                let Some(mut record) = Self::load(context, &cancel.order_id)? else {
                    return Ok(()); // never charged: nothing to stop
                };
                if record.status != PaymentStatus::Pending || record.failure_reported {
                    return Ok(()); // decided already, or already stopped
                }
                // The call in flight or the retry armed still comes back; from then on only
                // lookups are made (`on_timer`).
                record.failure_reported = true;
                tracing::info!(order = %cancel.order_id, reason = %cancel.reason, "charge cancelled");
                Self::save(context, &record)
            }
            PaymentCommand::Refund(refund) => {
                let Some(mut record) = Self::load(context, &refund.order_id)? else {
                    return Err(ProcessError::invalid(format!(
                        "order {} has no payment to refund",
                        refund.order_id
                    )));
                };
                if record.status != PaymentStatus::Succeeded
                    || record.refund_status != RefundStatus::None
                {
                    return Ok(()); // nothing was charged, or the refund is already under way
                }
                let request = ProviderRequest {
                    operation: ProviderOperation::Refund,
                    order_id: refund.order_id,
                    payment_id: refund.payment_id,
                    amount: refund.amount,
                    payment_method_token: None,
                    idempotency_key: refund.idempotency_key,
                    attempt: 1,
                    provider_reference: record.provider_reference.clone(),
                    origin,
                };
                record.refund = Some(request.clone());
                record.refund_status = RefundStatus::Pending;
                Self::save(context, &record)?;
                request_call(context, &request, timestamp)
            }
        }
    }

    fn on_result(
        &self,
        context: &mut Context<'_>,
        result: ProviderResult,
        timestamp: i64,
    ) -> Result<(), ProcessError> {
        let order_id = result.request.order_id;
        let Some(mut record) = Self::load(context, &order_id)? else {
            return Err(ProcessError::invalid(format!(
                "a provider result for unknown order {order_id}"
            )));
        };
        let origin = result.request.origin.clone();
        match result.request.operation {
            ProviderOperation::Charge | ProviderOperation::Lookup => {
                // Only the outcome of the latest call of a pending charge counts.
                if record.status != PaymentStatus::Pending
                    || result.request.attempt != record.charge.attempt
                {
                    return Ok(());
                }
                match result.outcome {
                    ProviderOutcome::Approved { reference } => {
                        record.status = PaymentStatus::Succeeded;
                        record.provider_reference = Some(reference.clone());
                        Self::save(context, &record)?;
                        emit_event(
                            context,
                            &origin,
                            PaymentEvent::PaymentSucceeded(PaymentSucceeded {
                                order_id,
                                payment_id: record.charge.payment_id,
                                amount: record.charge.amount,
                                provider_reference: reference,
                                attempt: record.charge.attempt,
                            }),
                            timestamp,
                        )
                    }
                    outcome if outcome.is_retriable() => {
                        let attempt = record.charge.attempt;
                        // After max-attempts the saga is told the payment failed, so the order
                        // ends. No charge is made after that: the provider may have charged on
                        // a call that timed out, so it is asked (lookups, same key) until it
                        // can tell; a charge found is refunded by the saga.
                        if attempt >= self.config.max_attempts && !record.failure_reported {
                            record.failure_reported = true;
                            emit_event(
                                context,
                                &origin,
                                PaymentEvent::PaymentFailed(PaymentFailed {
                                    order_id,
                                    payment_id: record.charge.payment_id,
                                    reason: format!(
                                        "no definite answer after {attempt} attempts ({}); still confirming with the provider",
                                        describe(&outcome)
                                    ),
                                    decline_code: None,
                                    retriable: true,
                                    attempt,
                                }),
                                timestamp,
                            )?;
                        }
                        if attempt >= self.config.reconcile_attempts {
                            record.status = PaymentStatus::Failed;
                            tracing::error!(
                                order = %order_id,
                                idempotency_key = %record.charge.idempotency_key,
                                attempts = attempt,
                                "the provider never answered definitely; reconcile this charge by hand"
                            );
                        } else {
                            let due =
                                context.now_ms() + self.config.retry_delay_ms(&order_id, attempt);
                            context.schedule(
                                TimerKind::WallClock,
                                &retry_timer_key(&order_id, ProviderOperation::Charge),
                                due,
                                Vec::new(),
                            )?;
                        }
                        Self::save(context, &record)
                    }
                    outcome => {
                        record.status = PaymentStatus::Failed;
                        Self::save(context, &record)?;
                        if record.failure_reported {
                            return Ok(());
                        }
                        // (A lookup's "no charge" ends here too; its failure was reported.)
                        let (reason, decline_code) = match outcome {
                            ProviderOutcome::Declined { code, message } => (message, Some(code)),
                            ProviderOutcome::InsufficientFunds => (
                                "insufficient funds".to_string(),
                                Some("insufficient_funds".to_string()),
                            ),
                            _ => unreachable!("approved and ambiguous outcomes are handled above"),
                        };
                        emit_event(
                            context,
                            &origin,
                            PaymentEvent::PaymentFailed(PaymentFailed {
                                order_id,
                                payment_id: record.charge.payment_id,
                                reason,
                                decline_code,
                                retriable: false,
                                attempt: record.charge.attempt,
                            }),
                            timestamp,
                        )
                    }
                }
            }
            ProviderOperation::Refund => {
                let Some(refund) = record.refund.clone() else {
                    return Ok(());
                };
                if record.refund_status != RefundStatus::Pending
                    || result.request.attempt != refund.attempt
                {
                    return Ok(());
                }
                match result.outcome {
                    ProviderOutcome::Approved { reference } => {
                        record.refund_status = RefundStatus::Refunded;
                        Self::save(context, &record)?;
                        emit_event(
                            context,
                            &origin,
                            PaymentEvent::PaymentRefunded(PaymentRefunded {
                                order_id,
                                payment_id: refund.payment_id,
                                amount: refund.amount,
                                provider_reference: reference,
                                reason: "refund".to_string(),
                            }),
                            timestamp,
                        )
                    }
                    // A refund owed is retried while the answer is ambiguous, at the capped
                    // backoff; a definite refusal needs an operator.
                    outcome
                        if outcome.is_retriable()
                            && refund.attempt < self.config.reconcile_attempts =>
                    {
                        let due = context.now_ms()
                            + self.config.retry_delay_ms(&order_id, refund.attempt);
                        context.schedule(
                            TimerKind::WallClock,
                            &retry_timer_key(&order_id, ProviderOperation::Refund),
                            due,
                            Vec::new(),
                        )
                    }
                    outcome => {
                        record.refund_status = RefundStatus::Failed;
                        Self::save(context, &record)?;
                        tracing::error!(
                            order = %order_id,
                            idempotency_key = %refund.idempotency_key,
                            outcome = %describe(&outcome),
                            "a refund was refused; an operator must refund this order by hand"
                        );
                        Ok(())
                    }
                }
            }
        }
    }
}

impl Processor for PaymentProcessor {
    type InKey = String;
    type InValue = PaymentInput;
    type OutKey = String;
    type OutValue = PaymentOutput;

    fn process(
        &mut self,
        context: &mut Context<'_>,
        record: Record<String, PaymentInput>,
    ) -> Result<(), ProcessError> {
        match record.value {
            PaymentInput::Command(envelope) => self.on_command(context, envelope, record.timestamp),
            PaymentInput::Result(result) => self.on_result(context, result, record.timestamp),
        }
    }

    fn on_timer(
        &mut self,
        context: &mut Context<'_>,
        timer: FiredTimer,
    ) -> Result<(), ProcessError> {
        let key = String::from_utf8(timer.key)
            .map_err(|_| ProcessError::invalid("timer key is not UTF-8"))?;
        let (order_id, operation) = key
            .split_once(':')
            .ok_or_else(|| ProcessError::invalid(format!("unexpected payment timer {key}")))?;
        let order_id: OrderId = order_id
            .parse()
            .map_err(|error| ProcessError::invalid(format!("payment timer {key}: {error}")))?;
        let Some(mut record) = Self::load(context, &order_id)? else {
            return Ok(());
        };
        let request = if operation == "Charge" {
            if record.status != PaymentStatus::Pending {
                return Ok(());
            }
            record.charge.attempt += 1;
            let mut request = record.charge.clone();
            if record.failure_reported {
                request.operation = ProviderOperation::Lookup;
            }
            request
        } else {
            let Some(refund) = record.refund.as_mut() else {
                return Ok(());
            };
            if record.refund_status != RefundStatus::Pending {
                return Ok(());
            }
            refund.attempt += 1;
            refund.clone()
        };
        Self::save(context, &record)?;
        request_call(context, &request, timer.due_ms)
    }
}

fn describe(outcome: &ProviderOutcome) -> String {
    match outcome {
        ProviderOutcome::Approved { reference } => format!("approved ({reference})"),
        ProviderOutcome::Declined { code, message } => format!("declined, {code}: {message}"),
        ProviderOutcome::InsufficientFunds => "insufficient funds".to_string(),
        ProviderOutcome::Transient { message } => format!("transient error: {message}"),
        ProviderOutcome::Timeout => "timeout".to_string(),
    }
}

/// Encodes a provider request for the internal request topic.
pub fn encode_request(output: &PaymentOutput) -> Option<Vec<u8>> {
    match output {
        PaymentOutput::Request(request) => serde_json::to_vec(request).ok(),
        PaymentOutput::Event(_) => None,
    }
}

/// The payment-events variant of the output.
pub fn payment_event(output: &PaymentOutput) -> Option<&Envelope<PaymentEvent>> {
    match output {
        PaymentOutput::Event(envelope) => Some(envelope),
        PaymentOutput::Request(_) => None,
    }
}
