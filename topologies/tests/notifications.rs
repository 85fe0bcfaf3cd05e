//! Notifications through the test driver: one message per event per enabled channel, in the
//! user's locale, nothing twice for a replayed event, and the outbox records them.

use orderflow_processors::notification::OUTBOX_STORE;
use orderflow_processors::wire::envelope_serde;
use orderflow_runtime::TopologyTestDriver;
use orderflow_schemas::currency::Currency;
use orderflow_schemas::envelope::{Envelope, Message};
use orderflow_schemas::ids::{CorrelationId, EventId, OrderId, PaymentId, UserId};
use orderflow_schemas::messages::notification_events::NotificationEvent;
use orderflow_schemas::messages::order_events::{OrderConfirmed, OrderEvent};
use orderflow_schemas::messages::payment_events::{PaymentEvent, PaymentRefunded};
use orderflow_schemas::messages::user_events::{
    NotificationChannels, NotificationTopic, UserCreated, UserEvent, UserRole,
};
use orderflow_schemas::money::Money;
use orderflow_schemas::time::Timestamp;
use orderflow_topologies::notifications::{self, NotificationsOptions};

const NOW: i64 = 1_767_225_600_000;

fn envelope<T: Message>(payload: T) -> Envelope<T> {
    Envelope::new(
        payload,
        Timestamp::from_unix_millis(NOW),
        CorrelationId::generate(NOW),
        None,
        EventId::generate(NOW),
    )
}

fn pipe<T: Message>(driver: &TopologyTestDriver, topic: &str, envelope: &Envelope<T>) {
    let key = envelope.payload.partition_key();
    driver
        .pipe(topic, &envelope_serde::<T>(), &key, envelope, NOW)
        .unwrap();
}

fn user(locale: &str, channels: NotificationChannels) -> UserCreated {
    UserCreated {
        user_id: UserId::generate(NOW),
        email: "ada@example.com".to_string(),
        name: "Ada".to_string(),
        phone: Some("+15550100".to_string()),
        locale: locale.to_string(),
        channels,
        role: UserRole::Customer,
        preferences: Default::default(),
    }
}

#[test]
fn one_message_per_enabled_channel_in_the_users_locale_and_never_twice() {
    let mut driver =
        TopologyTestDriver::new(notifications::topology(&NotificationsOptions::default()).unwrap())
            .unwrap();
    let german = user(
        "de-DE",
        NotificationChannels {
            email: true,
            sms: true,
            push: false,
        },
    );
    pipe(
        &driver,
        "user-events",
        &envelope(UserEvent::UserCreated(german.clone())),
    );
    driver.run_until_idle().unwrap();

    let order_id = OrderId::generate(NOW);
    let total = Money::new(4_200, Currency::parse("EUR").unwrap());
    let confirmed = envelope(OrderEvent::OrderConfirmed(OrderConfirmed {
        order_id,
        user_id: german.user_id,
        payment_id: PaymentId::generate(NOW),
        total,
    }));
    pipe(&driver, "order-events", &confirmed);
    pipe(&driver, "order-events", &confirmed); // a duplicate delivery of the same event
    let refunded = envelope(PaymentEvent::PaymentRefunded(PaymentRefunded {
        order_id,
        payment_id: PaymentId::generate(NOW),
        amount: total,
        provider_reference: "re_1".to_string(),
        reason: "cancelled".to_string(),
    }));
    pipe(&driver, "payment-events", &refunded);
    driver.run_until_idle().unwrap();

    let messages: Vec<NotificationEvent> = driver
        .read(
            "notification-events",
            &envelope_serde::<NotificationEvent>(),
        )
        .unwrap()
        .into_iter()
        .map(|record| record.value.payload)
        .collect();
    let sends: Vec<&NotificationEvent> = messages
        .iter()
        .filter(|message| {
            matches!(
                message,
                NotificationEvent::SendEmail(_)
                    | NotificationEvent::SendSms(_)
                    | NotificationEvent::SendPush(_)
            )
        })
        .collect();
    // Confirmation and refund, by e-mail and SMS (push is off): four messages, not six.
    assert_eq!(sends.len(), 4, "{sends:#?}");
    let email = sends
        .iter()
        .find_map(|message| match message {
            NotificationEvent::SendEmail(email) if email.template == "order_confirmed" => {
                Some(email)
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(email.subject, "Bestellung bestätigt");
    assert_eq!(email.to, "ada@example.com");
    // The outbox stored each and, being the delivery, recorded it as sent.
    let sent = messages
        .iter()
        .filter(|message| matches!(message, NotificationEvent::NotificationSent(_)))
        .count();
    assert_eq!(sent, 4);
    let outbox = driver
        .store_entries::<String, Envelope<NotificationEvent>>(OUTBOX_STORE)
        .unwrap();
    assert_eq!(outbox.len(), 4);
    assert!(
        outbox
            .iter()
            .all(|(key, _)| key.starts_with(&german.user_id.to_string()))
    );
}

#[test]
fn a_muted_kind_of_notification_is_sent_on_no_channel() {
    let mut driver =
        TopologyTestDriver::new(notifications::topology(&NotificationsOptions::default()).unwrap())
            .unwrap();
    let mut quiet = user(
        "en-GB",
        NotificationChannels {
            email: true,
            sms: true,
            push: true,
        },
    );
    quiet.preferences.muted = [NotificationTopic::PaymentRefunded].into();
    pipe(
        &driver,
        "user-events",
        &envelope(UserEvent::UserCreated(quiet.clone())),
    );
    driver.run_until_idle().unwrap();
    let order_id = OrderId::generate(NOW);
    let total = Money::new(1_000, Currency::parse("EUR").unwrap());
    pipe(
        &driver,
        "order-events",
        &envelope(OrderEvent::OrderConfirmed(OrderConfirmed {
            order_id,
            user_id: quiet.user_id,
            payment_id: PaymentId::generate(NOW),
            total,
        })),
    );
    pipe(
        &driver,
        "payment-events",
        &envelope(PaymentEvent::PaymentRefunded(PaymentRefunded {
            order_id,
            payment_id: PaymentId::generate(NOW),
            amount: total,
            provider_reference: "re_2".to_string(),
            reason: "cancelled".to_string(),
        })),
    );
    driver.run_until_idle().unwrap();
    let templates: Vec<String> = driver
        .read(
            "notification-events",
            &envelope_serde::<NotificationEvent>(),
        )
        .unwrap()
        .into_iter()
        .filter_map(|record| match record.value.payload {
            NotificationEvent::SendEmail(email) => Some(email.template),
            NotificationEvent::SendSms(sms) => Some(sms.template),
            NotificationEvent::SendPush(push) => Some(push.template),
            _ => None,
        })
        .collect();
    // The confirmation on all three channels; the refund, muted, on none.
    assert_eq!(templates.len(), 3, "{templates:?}");
    assert!(
        templates
            .iter()
            .all(|template| template == "order_confirmed")
    );
}
