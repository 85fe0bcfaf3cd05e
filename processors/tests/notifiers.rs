//! Notifiers against real servers: an SMTP server (aiosmtpd, installed by `scripts/test`) and an
//! HTTP receiver that checks the webhook signature.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orderflow_processors::adapters::notifier::{NotificationEffect, Notifier};
use orderflow_processors::adapters::smtp::SmtpNotifier;
use orderflow_processors::adapters::webhook::{WebhookNotifier, signature};
use orderflow_processors::wire::{EnvelopeCodec, envelope_serde};
use orderflow_runtime::EffectHandler;
use orderflow_schemas::envelope::Envelope;
use orderflow_schemas::ids::{CorrelationId, EventId, NotificationId, UserId};
use orderflow_schemas::messages::notification_events::{
    NotificationChannel, NotificationEvent, SendEmail, SendSms,
};
use orderflow_schemas::time::Timestamp;
use orderflow_state_stores::Codec;

const NOW: i64 = 1_767_225_600_000;

fn email(to: &str) -> Envelope<NotificationEvent> {
    Envelope::new(
        NotificationEvent::SendEmail(SendEmail {
            notification_id: NotificationId::generate(NOW),
            user_id: UserId::generate(NOW),
            to: to.to_string(),
            locale: "en".to_string(),
            template: "order_confirmed".to_string(),
            subject: "Order confirmed".to_string(),
            body: "Hi Ada, your order is paid and confirmed.".to_string(),
            source_event_id: EventId::generate(NOW),
        }),
        Timestamp::from_unix_millis(NOW),
        CorrelationId::generate(NOW),
        None,
        EventId::generate(NOW),
    )
}

fn as_record(envelope: &Envelope<NotificationEvent>) -> orderflow_runtime::LogRecord {
    envelope_serde::<NotificationEvent>()
        .to_log_record(&"user".to_string(), envelope, NOW)
        .unwrap()
}

fn result_of(record: Option<orderflow_runtime::LogRecord>) -> NotificationEvent {
    EnvelopeCodec::<NotificationEvent>::default()
        .decode(record.unwrap().value.as_deref().unwrap())
        .unwrap()
        .payload
}

struct SmtpServer {
    child: Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_smtp_server() -> SmtpServer {
    let maildir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir.path().join("mail"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs aiosmtpd (pip install aiosmtpd; scripts/test does)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "aiosmtpd did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    SmtpServer {
        child,
        port,
        maildir,
    }
}

#[test]
fn e_mails_are_delivered_over_smtp_and_failures_recorded() {
    let server = start_smtp_server();
    let notifier =
        SmtpNotifier::new("127.0.0.1", server.port, "orderflow <shop@example.com>").unwrap();
    assert!(notifier.handles(NotificationChannel::Email));
    assert!(!notifier.handles(NotificationChannel::Sms));
    let effect = NotificationEffect::new(notifier, 3, Duration::from_millis(10));
    let sent = result_of(
        effect
            .execute(&as_record(&email("ada@example.com")))
            .unwrap(),
    );
    assert!(
        matches!(sent, NotificationEvent::NotificationSent(_)),
        "{sent:?}"
    );
    let delivered: Vec<String> = std::fs::read_dir(server.maildir.path().join("mail/new"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    assert_eq!(delivered.len(), 1);
    assert!(
        delivered[0].contains("To: ada@example.com"),
        "{}",
        delivered[0]
    );
    assert!(
        delivered[0].contains("Subject: Order confirmed"),
        "{}",
        delivered[0]
    );
    assert!(
        delivered[0].contains("your order is paid and confirmed"),
        "{}",
        delivered[0]
    );

    // A channel SMTP does not deliver: recorded as failed (not retriable), not dropped, and
    // no mail is sent for it.
    let sms = Envelope::new(
        NotificationEvent::SendSms(SendSms {
            notification_id: NotificationId::generate(NOW),
            user_id: UserId::generate(NOW),
            to: "+14155550100".to_string(),
            locale: "en".to_string(),
            template: "order_confirmed".to_string(),
            body: "Your order is confirmed.".to_string(),
            source_event_id: EventId::generate(NOW),
        }),
        Timestamp::from_unix_millis(NOW),
        CorrelationId::generate(NOW),
        None,
        EventId::generate(NOW),
    );
    match result_of(effect.execute(&as_record(&sms)).unwrap()) {
        NotificationEvent::NotificationFailed(failed) => {
            assert_eq!(failed.channel, NotificationChannel::Sms);
            assert!(!failed.retriable);
            assert!(failed.reason.contains("no notifier"), "{}", failed.reason);
        }
        other => panic!("expected NotificationFailed, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_dir(server.maildir.path().join("mail/new"))
            .unwrap()
            .count(),
        1
    );

    // Nobody listens: retried, then recorded as failed.
    let unreachable =
        SmtpNotifier::new("127.0.0.1", support::free_port(), "shop@example.com").unwrap();
    let effect = NotificationEffect::new(unreachable, 2, Duration::from_millis(10));
    let failed = result_of(
        effect
            .execute(&as_record(&email("ada@example.com")))
            .unwrap(),
    );
    let NotificationEvent::NotificationFailed(failed) = failed else {
        panic!("expected a failure, got {failed:?}");
    };
    assert_eq!(failed.attempt, 2);
    assert!(failed.retriable);
}

/// (signature header, body) of each request the receiver got.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// An HTTP receiver answering with the given statuses in turn, recording each request.
fn start_receiver(statuses: Vec<u16>) -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    std::thread::spawn(move || {
        for status in statuses {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut signature_header = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end().to_string();
                if line.is_empty() {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                if lower.starts_with("x-orderflow-signature:") {
                    signature_header = line["x-orderflow-signature:".len()..].trim().to_string();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            recorded.lock().unwrap().push((signature_header, body));
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .unwrap();
        }
    });
    (port, seen)
}

#[test]
fn webhooks_are_signed_and_retried_on_server_errors() {
    let secret = b"whsec_test".to_vec();
    let (port, seen) = start_receiver(vec![503, 200]);
    let notifier = WebhookNotifier::new(
        format!("http://127.0.0.1:{port}/hooks/orderflow"),
        secret.clone(),
        vec![NotificationChannel::Email, NotificationChannel::Push],
        Duration::from_secs(5),
    );
    let effect = NotificationEffect::new(notifier, 3, Duration::from_millis(10));
    let message = email("ada@example.com");
    let result = result_of(effect.execute(&as_record(&message)).unwrap());
    assert!(
        matches!(result, NotificationEvent::NotificationSent(_)),
        "{result:?}"
    );
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "one 503, then delivered");
    for (header, body) in &requests {
        let timestamp: i64 = header
            .split(',')
            .find_map(|part| part.strip_prefix("t="))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            header,
            &signature(&secret, timestamp, body),
            "a valid signature"
        );
        assert_eq!(body, &message.encode_json());
    }
    // A client error is final.
    let (port, _) = start_receiver(vec![400]);
    let notifier = WebhookNotifier::new(
        format!("http://127.0.0.1:{port}/"),
        secret,
        vec![NotificationChannel::Email],
        Duration::from_secs(5),
    );
    let effect = NotificationEffect::new(notifier, 3, Duration::from_millis(10));
    let failed = result_of(effect.execute(&as_record(&message)).unwrap());
    assert!(
        matches!(failed, NotificationEvent::NotificationFailed(ref failed) if failed.attempt == 1 && !failed.retriable),
        "{failed:?}"
    );
}
