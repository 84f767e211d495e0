//! Validation of keys, meta, patterns and names: typed errors, nothing changed, no panics.

mod common;

use common::{assert_quiet, meta, node};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use roster::{
    KeyError, Meta, MetaError, Node, Pattern, Pid, RegistryError, ScopeError, StartError, Table,
};
use serde::ser::{Error as _, Serialize, Serializer};

fn small_limits() -> Node {
    Node::builder()
        .max_key_bytes(8)
        .max_meta_bytes(8)
        .start()
        .unwrap()
}

#[tokio::test]
async fn an_empty_key_is_refused_by_every_write() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    let empty = RegistryError::InvalidKey(KeyError::Empty);
    assert_eq!(p.register("", &()).map(|_| ()), Err(empty.clone()));
    assert_eq!(p.unregister(""), Err(empty.clone()));
    assert_eq!(p.join("", &()), Err(empty.clone()));
    assert_eq!(p.leave(""), Err(empty.clone()));
    assert_eq!(
        node.default_scope().spawn_named("", &(), |_| async {}),
        Err(empty)
    );
    assert_eq!(
        node.default_scope().name_count() + node.default_scope().membership_count(),
        0
    );
    assert_quiet(&mut events);
}

#[tokio::test]
async fn a_key_ending_in_a_slash_is_refused_by_every_write() {
    let node = node();
    let p = node.new_process();
    let prefix = RegistryError::InvalidKey(KeyError::PrefixNotAllowed("room/".into()));
    assert_eq!(p.register("room/", &()).map(|_| ()), Err(prefix.clone()));
    assert_eq!(p.unregister("room/"), Err(prefix.clone()));
    assert_eq!(p.join("room/", &()), Err(prefix.clone()));
    assert_eq!(p.leave("room/"), Err(prefix.clone()));
    assert_eq!(
        node.default_scope().spawn_named("room/", &(), |_| async {}),
        Err(prefix)
    );
    assert!(p.register("/", &()).is_err());
    p.register("/room", &()).unwrap();
    p.join("a//b", &()).unwrap();
}

#[tokio::test]
async fn a_key_longer_than_the_limit_is_refused_with_its_length_in_bytes() {
    let node = small_limits();
    let p = node.new_process();
    let too_long = |len| RegistryError::InvalidKey(KeyError::TooLong { len, max: 8 });
    assert_eq!(p.register("123456789", &()).map(|_| ()), Err(too_long(9)));
    assert_eq!(p.join("123456789", &()), Err(too_long(9)));
    assert_eq!(p.unregister("123456789"), Err(too_long(9)));
    assert_eq!(p.leave("123456789"), Err(too_long(9)));
    // Bytes, not characters: three 'é' are six bytes, three '€' nine.
    assert!(p.register("ééé", &()).is_ok());
    assert_eq!(p.register("€€€", &()).map(|_| ()), Err(too_long(9)));
    // The limit itself is allowed.
    assert!(p.register("12345678", &()).is_ok());
    assert!(p.join("12345678", &()).is_ok());
    assert_eq!(node.default_scope().name_count(), 2);
}

#[tokio::test]
async fn meta_larger_than_the_limit_is_refused_with_its_encoded_size() {
    let node = small_limits();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    // A MessagePack string of n < 32 bytes encodes in n + 1 bytes.
    let too_large = RegistryError::InvalidMeta(MetaError::TooLarge { len: 9, max: 8 });
    assert_eq!(
        p.register("k", &"12345678").map(|_| ()),
        Err(too_large.clone())
    );
    assert_eq!(p.join("k", &"12345678"), Err(too_large.clone()));
    assert_eq!(
        node.default_scope()
            .spawn_named("k", &"12345678", |_| async {}),
        Err(too_large.clone())
    );
    assert_eq!(
        node.default_scope().name_count() + node.default_scope().membership_count(),
        0
    );
    assert_quiet(&mut events);

    // Exactly at the limit is accepted; an update over it is refused and changes nothing.
    p.register("k", &"1234567").unwrap();
    assert_eq!(p.register("k", &"12345678").map(|_| ()), Err(too_large));
    assert_eq!(
        node.default_scope().lookup("k").unwrap().meta,
        meta("1234567")
    );
}

struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(S::Error::custom("this value refuses to be encoded"))
    }
}

#[tokio::test]
async fn meta_serde_cannot_encode_is_refused_with_encode() {
    let node = node();
    let p = node.new_process();
    assert!(matches!(
        p.register("k", &Unencodable),
        Err(RegistryError::InvalidMeta(MetaError::Encode(_)))
    ));
    assert!(matches!(
        p.join("k", &Unencodable),
        Err(RegistryError::InvalidMeta(MetaError::Encode(_)))
    ));
    assert_eq!(
        node.default_scope().name_count() + node.default_scope().membership_count(),
        0
    );
}

#[tokio::test]
async fn invalid_subscription_patterns_are_refused() {
    let node = small_limits();
    let refused = |p: Pattern| node.default_scope().subscribe(p).map(|_| ()).unwrap_err();
    assert_eq!(
        refused(Pattern::Prefix("user".into())),
        RegistryError::InvalidKey(KeyError::NotAPrefix("user".into()))
    );
    assert_eq!(
        refused(Pattern::Exact("".into())),
        RegistryError::InvalidKey(KeyError::Empty)
    );
    assert_eq!(
        refused(Pattern::Prefix("".into())),
        RegistryError::InvalidKey(KeyError::Empty)
    );
    assert_eq!(
        refused(Pattern::Exact("user/".into())),
        RegistryError::InvalidKey(KeyError::PrefixNotAllowed("user/".into()))
    );
    assert_eq!(
        refused(Pattern::Prefix("123456789/".into())),
        RegistryError::InvalidKey(KeyError::TooLong { len: 10, max: 8 })
    );
    assert!(
        node.default_scope()
            .subscribe_many([Pattern::All, Pattern::Prefix("x".into())])
            .is_err(),
        "one bad pattern refuses the whole subscription"
    );
    assert!(node.default_scope().subscribe("").is_err());
}

#[test]
fn patterns_parse_from_strings() {
    assert_eq!(Pattern::from("*"), Pattern::All);
    assert_eq!(Pattern::from("a/"), Pattern::Prefix("a/".into()));
    assert_eq!(Pattern::from("a"), Pattern::Exact("a".into()));
    assert!(Pattern::from("a/").matches("a/b/c"));
    assert!(!Pattern::from("a/").matches("ab"));
    assert!(!Pattern::from("a").matches("a/b"));
}

#[tokio::test]
async fn queries_with_invalid_keys_find_nothing() {
    let node = small_limits();
    let p = node.new_process();
    p.register("k", &()).unwrap();
    p.join("g", &()).unwrap();
    for key in ["", "k/", "123456789"] {
        assert_eq!(node.default_scope().lookup(key), None);
        assert_eq!(node.default_scope().whereis(key), None);
    }
    assert!(node.default_scope().members("").is_empty());
    assert!(node.default_scope().members("123456789").is_empty());
    assert!(matches!(
        node.default_scope().names("123456789/", 10),
        Err(KeyError::TooLong { .. })
    ));
    assert!(matches!(
        node.default_scope()
            .select(Table::Names, Some("k"), |_| true),
        Err(KeyError::NotAPrefix(_))
    ));
    // `""` is the empty prefix (every key), as in `registered` and `groups`.
    let everything = node
        .default_scope()
        .select(Table::Names, Some(""), |_| true)
        .unwrap();
    assert_eq!(everything.len(), 1);
    assert_eq!(everything[0].key, "k");
}

#[tokio::test]
async fn node_names_are_validated() {
    assert_eq!(
        Node::builder().name("").start().map(|_| ()),
        Err(StartError::InvalidName(KeyError::Empty))
    );
    assert!(matches!(
        Node::builder().name("x".repeat(2000)).start(),
        Err(StartError::InvalidName(KeyError::TooLong { len: 2000, .. }))
    ));
}

#[tokio::test]
async fn mailbox_bytes_below_max_message_bytes_are_refused_at_start() {
    let zero = Node::builder().mailbox_bytes(0).start().map(|_| ());
    assert_eq!(
        zero,
        Err(StartError::MailboxBytes {
            bytes: 0,
            min: 1 << 20
        })
    );
    let message = zero.unwrap_err().to_string();
    assert!(
        message.contains("NodeBuilder::mailbox_bytes"),
        "the error says what to change: {message}"
    );
    assert!(matches!(
        Node::builder()
            .max_message_bytes(4 << 20)
            .mailbox_bytes(2 << 20)
            .start(),
        Err(StartError::MailboxBytes {
            bytes: 2097152,
            min: 4194304
        })
    ));
    assert!(Node::builder().mailbox_bytes(1 << 20).start().is_ok());
}

#[test]
fn a_node_cannot_start_outside_a_tokio_runtime() {
    assert_eq!(
        Node::builder().start().map(|_| ()),
        Err(StartError::NoRuntime)
    );
}

#[test]
fn meta_round_trips_and_reports_typed_decode_errors() {
    let m = Meta::encode(&("eu", 3u8)).unwrap();
    assert_eq!(m.decode::<(String, u8)>().unwrap(), ("eu".into(), 3));
    assert!(matches!(m.decode::<u64>(), Err(MetaError::Decode(_))));
    assert_eq!(Meta::from_bytes(&[]), Meta::EMPTY);
    assert_eq!(Meta::from_bytes(&[0xc0]), Meta::EMPTY);
    assert_eq!(Meta::encode(&()).unwrap(), Meta::EMPTY);
    assert_eq!(Meta::from_bytes(m.as_bytes()), m);
    assert_eq!(m.encoded_len(), m.as_bytes().len());
}

/// What key validation of a write must say about `key` with `max` bytes allowed.
fn expected_write_key_error(key: &str, max: usize) -> Option<KeyError> {
    if key.is_empty() {
        Some(KeyError::Empty)
    } else if key.len() > max {
        Some(KeyError::TooLong {
            len: key.len(),
            max,
        })
    } else if key.ends_with('/') {
        Some(KeyError::PrefixNotAllowed(key.into()))
    } else {
        None
    }
}

fn arbitrary_key() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ab/]{0,12}",
        "[a-z/é€\u{0}]{0,20}",
        Just(String::new()),
        Just("/".to_string()),
        Just("*".to_string()),
        Just("default".to_string()),
    ]
}

const MAX_KEY: usize = 10;
const MAX_META: usize = 16;

fn exercise(key: &str, other: &str, bytes: &[u8], limit: usize) -> Result<(), TestCaseError> {
    let node = Node::builder()
        .max_key_bytes(MAX_KEY)
        .max_meta_bytes(MAX_META)
        .mailbox_capacity(2)
        .subscription_capacity(2)
        .start()
        .unwrap();
    let mut all = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    let q = node.new_process();
    let key_error = expected_write_key_error(key, MAX_KEY).map(RegistryError::InvalidKey);
    let encoded = Meta::encode(bytes).unwrap();
    let meta_error = (encoded.encoded_len() > MAX_META).then(|| {
        RegistryError::InvalidMeta(MetaError::TooLarge {
            len: encoded.encoded_len(),
            max: MAX_META,
        })
    });
    let write_error = key_error.clone().or(meta_error);

    // Writes: the outcome is exactly the validation's verdict.
    let registered = p.register(key, bytes);
    prop_assert_eq!(registered.as_ref().err(), write_error.as_ref());
    let joined = p.join(key, bytes);
    prop_assert_eq!(joined.as_ref().err(), write_error.as_ref());
    let _ = q.register(key, other);
    let _ = q.join(key, other);
    if write_error.is_none() {
        prop_assert_eq!(node.default_scope().whereis(key), Some(p.pid()));
        prop_assert_eq!(
            node.default_scope().lookup(key).unwrap().meta,
            encoded.clone()
        );
        prop_assert!(node.default_scope().members(key).pids().contains(&p.pid()));
    }
    let _ = node.default_scope().spawn_named(key, bytes, |_| async {});
    let _ = node.default_scope().spawn_named(other, other, |_| async {});

    // Reads with anything as a key or prefix.
    for k in [key, other] {
        let _ = node.default_scope().lookup(k);
        let _ = node.default_scope().whereis(k);
        let _ = node.default_scope().names(k, limit);
        let _ = node.default_scope().members(k).to_vec();
        let _ = node.default_scope().members_limited(k, limit).len();
        let _ = node.default_scope().local_members(k);
        let _ = node.default_scope().member_count(k);
        let _ = node.default_scope().local_member_count(k);
        let _ = node.default_scope().groups(k, limit);
        let _ = node
            .default_scope()
            .select(Table::Names, Some(k), |e| e.meta.decode::<String>().is_ok());
        let _ = node.default_scope().select(Table::Groups, Some(k), |e| {
            e.meta.decode::<Vec<u8>>().is_ok()
        });
        let _ = node
            .default_scope()
            .count_match(Table::Names, Some(k), |_| true);
        let _ = node
            .default_scope()
            .count_match(Table::Groups, Some(k), |_| true);
        let _ = node.default_scope().dispatch(k, bytes);
        let _ = node.default_scope().subscribe(Pattern::from(k));
        let _ = node.default_scope().subscribe(Pattern::Exact(k.into()));
        let _ = node.default_scope().subscribe(Pattern::Prefix(k.into()));
        let _ = node
            .default_scope()
            .subscribe_many([Pattern::from(k), Pattern::from(other)]);
        let _ = Pattern::from(k).matches(other);
    }
    let _ = node.default_scope().select(Table::Names, None, |_| true);
    let _ = node
        .default_scope()
        .count_match(Table::Groups, None, |_| true);

    // Messages and meta from arbitrary bytes.
    let _ = node.send(p.pid(), bytes);
    let _ = p.send(q.pid(), other);
    let _ = node.send(Pid::new(node.incarnation(), limit as u64), bytes);
    let raw = Meta::from_bytes(bytes);
    let _ = raw.decode::<String>();
    let _ = raw.decode::<u64>();
    let _ = raw.decode::<Vec<String>>();
    let _ = raw.decode::<(u8, String, Vec<u64>)>();
    let _ = format!("{raw:?}");

    // Scopes with anything as a name.
    for name in [key, other] {
        let connected = node.connect(name);
        if let Ok(scope) = &connected {
            let _ = scope.register(&p, other, bytes);
            let _ = scope.join(&q, other, bytes);
            let _ = scope.subscribe(Pattern::from(other));
        }
        let _ = node.connect_with(name, roster::ScopeOptions::new().local_only());
        let _ = node.scope(name);
        let result = node.disconnect(name);
        if name == "default" {
            prop_assert_eq!(result, Err(ScopeError::DefaultScope));
        } else if connected.is_ok() {
            prop_assert_eq!(result, Ok(()));
        }
        if let Ok(scope) = &connected {
            prop_assert!(!scope.is_connected() || name == "default");
        }
    }

    // Removals, kills and drops after all that.
    let _ = p.unregister(key);
    let _ = p.leave(key);
    let _ = q.unregister(other);
    node.kill(q.pid());
    drop(p);
    drop(q);
    prop_assert_eq!(
        node.default_scope().name_count(),
        node.default_scope().names("", usize::MAX).unwrap().len()
    );
    let _ = common::queued_or_end(&mut all);
    Ok(())
}

#[test]
fn no_input_makes_any_api_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let mut runner = TestRunner::new(Config {
        cases: 256,
        ..Config::default()
    });
    let inputs = (
        arbitrary_key(),
        arbitrary_key(),
        proptest::collection::vec(any::<u8>(), 0..40),
        0usize..5,
    );
    runner
        .run(&inputs, |(key, other, bytes, limit)| {
            exercise(&key, &other, &bytes, limit)
        })
        .unwrap();
}
