//! select / count_match over names and groups, and dispatch to a key.

mod common;

use common::{cluster_config, eventually, fully_linked, meta, node, start_clustered, within};
use roster::Incarnation;
use roster::TryRecvError;
use roster::{Counted, Decoded, Dispatched, Entry, KeyError, Node, Pid, SendError, Table};
use serde::ser::{Error as _, Serialize, Serializer};

fn keys(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.key.as_str()).collect()
}

#[tokio::test]
async fn select_over_names_under_a_prefix_returns_matching_entries_in_key_order() {
    let node = node();
    let procs: Vec<_> = (0..5).map(|_| node.new_process()).collect();
    let ages = [
        ("user/3", 50u8),
        ("user/1", 40),
        ("user/2", 20),
        ("users", 90),
        ("admin/1", 70),
    ];
    for (p, (key, age)) in procs.iter().zip(ages) {
        p.register(key, &age).unwrap();
    }

    let old = node
        .default_scope()
        .select(Table::Names, Some("user/"), |e| {
            e.meta.decode::<u8>().unwrap() >= 30
        })
        .unwrap();

    assert_eq!(
        old,
        [
            Entry {
                key: "user/1".into(),
                pid: procs[1].pid(),
                meta: meta(&40u8)
            },
            Entry {
                key: "user/3".into(),
                pid: procs[0].pid(),
                meta: meta(&50u8)
            },
        ]
    );
    assert_eq!(
        node.default_scope()
            .count_match(Table::Names, Some("user/"), |e| e
                .meta
                .decode::<u8>()
                .unwrap()
                >= 30),
        Ok(2)
    );
}

#[tokio::test]
async fn select_without_a_prefix_scans_the_whole_table() {
    let node = node();
    let (a, b) = (node.new_process(), node.new_process());
    a.register("x", &1u8).unwrap();
    b.register("y/1", &2u8).unwrap();
    a.join("x", &3u8).unwrap();

    let mut names = node
        .default_scope()
        .select(Table::Names, None, |_| true)
        .unwrap();
    names.sort_by(|l, r| l.key.cmp(&r.key));
    assert_eq!(keys(&names), ["x", "y/1"]);
    assert_eq!(
        node.default_scope()
            .count_match(Table::Names, None, |_| true),
        Ok(2)
    );
    let by_b = node
        .default_scope()
        .select(Table::Names, None, |e| e.pid == b.pid())
        .unwrap();
    assert_eq!(keys(&by_b), ["y/1"]);
    assert_eq!(
        node.default_scope()
            .count_match(Table::Names, None, |e| e.key == "x"),
        Ok(1)
    );
    assert_eq!(
        node.default_scope()
            .count_match(Table::Names, None, |_| false),
        Ok(0)
    );
}

#[tokio::test]
async fn select_over_groups_yields_one_entry_per_member_of_each_group() {
    let node = node();
    let (a, b) = (node.new_process(), node.new_process());
    a.join("room/1", &"admin").unwrap();
    b.join("room/1", &"guest").unwrap();
    b.join("room/2", &"admin").unwrap();
    a.join("other", &"admin").unwrap();
    a.register("room/9", &"admin").unwrap();

    let all = node
        .default_scope()
        .select(Table::Groups, Some("room/"), |_| true)
        .unwrap();
    assert_eq!(
        all.iter()
            .map(|e| (e.key.as_str(), e.pid, e.meta.clone()))
            .collect::<Vec<_>>(),
        [
            ("room/1", a.pid(), meta("admin")),
            ("room/1", b.pid(), meta("guest")),
            ("room/2", b.pid(), meta("admin")),
        ]
    );
    let admins = |e: &Entry| e.meta.decode::<String>().unwrap() == "admin";
    assert_eq!(
        node.default_scope()
            .count_match(Table::Groups, Some("room/"), admins),
        Ok(2)
    );
    assert_eq!(
        node.default_scope()
            .count_match(Table::Groups, None, admins),
        Ok(3)
    );
    let of_a = node
        .default_scope()
        .select(Table::Groups, None, |e| e.pid == a.pid())
        .unwrap();
    let mut of_a = keys(&of_a);
    of_a.sort();
    assert_eq!(of_a, ["other", "room/1"]);
}

#[tokio::test]
async fn select_and_count_match_skip_dead_processes() {
    let node = node();
    let (alive, dead) = (node.new_process(), node.new_process());
    alive.register("n/1", &()).unwrap();
    dead.register("n/2", &()).unwrap();
    alive.join("g/1", &()).unwrap();
    dead.join("g/1", &()).unwrap();
    node.kill(dead.pid());

    for prefix in [None, Some("n/"), Some("g/")] {
        let names = node
            .default_scope()
            .select(Table::Names, prefix, |_| true)
            .unwrap();
        let groups = node
            .default_scope()
            .select(Table::Groups, prefix, |_| true)
            .unwrap();
        assert!(names.iter().chain(&groups).all(|e| e.pid == alive.pid()));
    }
    assert_eq!(
        node.default_scope()
            .count_match(Table::Names, None, |_| true),
        Ok(1)
    );
    assert_eq!(
        node.default_scope()
            .count_match(Table::Groups, Some("g/"), |_| true),
        Ok(1)
    );
}

#[tokio::test]
async fn select_and_count_match_refuse_a_prefix_without_a_trailing_slash() {
    let node = node();
    let p = node.new_process();
    p.register("user/1", &()).unwrap();
    let refused = Err(KeyError::NotAPrefix("user".into()));
    assert_eq!(
        node.default_scope()
            .select(Table::Names, Some("user"), |_| true),
        refused
    );
    assert_eq!(
        node.default_scope()
            .count_match(Table::Groups, Some("user"), |_| true),
        Err(KeyError::NotAPrefix("user".into()))
    );
}

#[tokio::test]
async fn the_predicate_is_called_once_per_live_entry() {
    let node = node();
    let procs: Vec<_> = (0..3).map(|_| node.new_process()).collect();
    for (i, p) in procs.iter().enumerate() {
        p.join("g", &i).unwrap();
        p.register(&format!("n/{i}"), &i).unwrap();
    }
    let mut calls = 0;
    let _ = node.default_scope().select(Table::Groups, None, |_| {
        calls += 1;
        false
    });
    assert_eq!(calls, 3);
    calls = 0;
    let _ = node
        .default_scope()
        .count_match(Table::Names, Some("n/"), |_| {
            calls += 1;
            true
        });
    assert_eq!(calls, 3);
}

#[tokio::test]
async fn dispatch_reaches_the_owner_and_every_member_of_the_exact_key_once() {
    let node = node();
    let (mut owner, mut a, mut b) = (node.new_process(), node.new_process(), node.new_process());
    let mut elsewhere = node.new_process();
    owner.register("room/1", &()).unwrap();
    owner.join("room/1", &()).unwrap(); // the owner is also a member: reached once
    a.join("room/1", &()).unwrap();
    b.join("room/1", &()).unwrap();
    elsewhere.join("room/10", &()).unwrap();
    elsewhere.join("room/1/sub", &()).unwrap();
    elsewhere.register("room/11", &()).unwrap();

    let sent = node.default_scope().dispatch("room/1", &"hello").unwrap();

    assert_eq!(
        sent,
        Dispatched {
            local: 3,
            mailbox_full: 0,
            remote_nodes: 0,
            remote_too_large: 0,
            remote_unreachable: 0,
        }
    );
    for p in [&mut owner, &mut a, &mut b] {
        let envelope = within("the dispatched message", p.recv_envelope())
            .await
            .unwrap();
        assert_eq!(envelope.from(), None);
        assert_eq!(envelope.decode::<String>().unwrap(), "hello");
        assert!(
            p.try_recv::<String>() == Err(TryRecvError::Empty),
            "delivered once"
        );
    }
    assert!(elsewhere.try_recv::<String>() == Err(TryRecvError::Empty));
}

#[tokio::test]
async fn dispatch_to_a_name_without_members_reaches_its_owner() {
    let node = node();
    let mut owner = node.new_process();
    owner.register("service", &()).unwrap();
    assert_eq!(
        node.default_scope()
            .dispatch("service", &1u8)
            .unwrap()
            .local,
        1
    );
    assert_eq!(owner.try_recv::<u8>().unwrap(), 1);
}

#[tokio::test]
async fn dispatch_to_a_key_nobody_holds_reaches_nobody() {
    let node = node();
    assert_eq!(
        node.default_scope().dispatch("nobody", &1u8),
        Ok(Dispatched::default())
    );
    assert_eq!(
        node.default_scope().dispatch("", &1u8),
        Ok(Dispatched::default())
    );
}

#[tokio::test]
async fn dispatch_to_a_prefix_reaches_nobody() {
    let node = node();
    let (mut a, mut b) = (node.new_process(), node.new_process());
    a.join("room/1", &()).unwrap();
    b.register("room/2", &()).unwrap();
    assert_eq!(
        node.default_scope().dispatch("room/", &1u8),
        Ok(Dispatched::default())
    );
    assert!(a.try_recv::<u8>() == Err(TryRecvError::Empty));
    assert!(b.try_recv::<u8>() == Err(TryRecvError::Empty));
}

#[tokio::test]
async fn dispatch_skips_dead_processes() {
    let node = node();
    let (mut alive, dead) = (node.new_process(), node.new_process());
    alive.join("g", &()).unwrap();
    dead.join("g", &()).unwrap();
    dead.register("g", &()).unwrap();
    node.kill(dead.pid());
    assert_eq!(node.default_scope().dispatch("g", &1u8).unwrap().local, 1);
    assert_eq!(alive.try_recv::<u8>().unwrap(), 1);
}

#[tokio::test]
async fn dispatch_counts_full_mailboxes_and_still_reaches_the_others() {
    let node = Node::builder().mailbox_capacity(1).start().unwrap();
    let (mut full, mut free) = (node.new_process(), node.new_process());
    full.join("g", &()).unwrap();
    free.join("g", &()).unwrap();
    node.send(full.pid(), &0u8).unwrap();

    let sent = node.default_scope().dispatch("g", &1u8).unwrap();

    assert_eq!(
        sent,
        Dispatched {
            local: 1,
            mailbox_full: 1,
            remote_nodes: 0,
            remote_too_large: 0,
            remote_unreachable: 0,
        }
    );
    assert_eq!(free.try_recv::<u8>().unwrap(), 1);
    assert_eq!(full.try_recv::<u8>().unwrap(), 0);
    assert!(full.try_recv::<u8>() == Err(TryRecvError::Empty));
}

#[tokio::test]
async fn one_dispatch_shares_one_encoding_between_its_receivers() {
    let node = node();
    let (mut a, mut b) = (node.new_process(), node.new_process());
    a.join("g", &()).unwrap();
    b.join("g", &()).unwrap();
    node.default_scope()
        .dispatch("g", &"a message long enough to be allocated")
        .unwrap();
    let from_a = a.recv_envelope().await.unwrap();
    let from_b = b.recv_envelope().await.unwrap();
    assert_eq!(from_a.payload(), from_b.payload());
    assert_eq!(
        from_a.payload().as_ptr(),
        from_b.payload().as_ptr(),
        "both receivers share the bytes of one encoding"
    );
}

struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(S::Error::custom("this value refuses to be encoded"))
    }
}

#[tokio::test]
async fn dispatching_a_message_serde_cannot_encode_fails_with_encode() {
    let node = node();
    let mut p = node.new_process();
    p.join("g", &()).unwrap();
    assert!(matches!(
        node.default_scope().dispatch("g", &Unencodable),
        Err(SendError::Encode(_))
    ));
    assert!(p.try_recv::<u8>() == Err(TryRecvError::Empty));
}

#[tokio::test]
async fn keys_of_and_names_of_a_pid_nobody_knows_are_empty() {
    let node = node();
    let p = node.new_process();
    p.register("n", &()).unwrap();
    p.join("g", &()).unwrap();
    let stranger = Pid::new(
        Incarnation::new(node.incarnation().get() ^ 1),
        p.pid().serial(),
    );
    assert!(node.default_scope().groups_of(stranger).is_empty());
    assert!(node.default_scope().names_of(stranger).is_empty());
    assert_eq!(node.node_name_of(stranger), None);
    assert_eq!(node.default_scope().groups_of(p.pid()), ["g"]);
    assert_eq!(node.node_name_of(p.pid()).as_deref(), Some("roster"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_names_of_and_node_name_of_answer_for_a_process_of_another_node() {
    let a = start_clustered(Node::builder(), "a", cluster_config("queries", &[]));
    let b = start_clustered(Node::builder(), "b", cluster_config("queries", &[&a]));
    eventually("a and b linked", || fully_linked(&[&a, &b])).await;
    let chat = a.connect("chat").unwrap();
    let b_chat = b.connect("chat").unwrap();
    // Asked about a remote pid before the writes below, so b's index of the default scope
    // is built empty and kept up to date by the replicated writes (in "chat" it is built
    // by the first query, after they arrived).
    assert!(
        b.default_scope()
            .groups_of(Pid::new(a.incarnation(), u64::MAX))
            .is_empty()
    );
    let user = a.new_process();
    user.register("user/1", &()).unwrap();
    user.join("room/2", &()).unwrap();
    user.join("room/1", &()).unwrap();
    chat.join(&user, "channel/7", &()).unwrap();
    eventually("b sees the user's groups", || {
        b.default_scope().groups_of(user.pid()) == ["room/1", "room/2"]
    })
    .await;
    assert_eq!(b.default_scope().names_of(user.pid()), ["user/1"]);
    eventually("b sees the user's channel in chat", || {
        b_chat.groups_of(user.pid()) == ["channel/7"]
    })
    .await;
    assert!(b_chat.names_of(user.pid()).is_empty());
    assert_eq!(b.node_name_of(user.pid()).as_deref(), Some("a"));
    assert_eq!(a.node_name_of(user.pid()).as_deref(), Some("a"));
    let local = b.new_process();
    assert_eq!(a.node_name_of(local.pid()).as_deref(), Some("b"));

    user.leave("room/2").unwrap();
    eventually("b sees the user leave room/2", || {
        b.default_scope().groups_of(user.pid()) == ["room/1"]
    })
    .await;
    let pid = user.pid();
    drop(user);
    eventually("b forgets the dead user's entries", || {
        b.default_scope().groups_of(pid).is_empty()
            && b.default_scope().names_of(pid).is_empty()
            && b_chat.groups_of(pid).is_empty()
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct User {
    age: u8,
}

/// user/1..user/5 with ages 10, 20, 30, 40, 50, and user/0 whose meta is not a `User`.
fn users(node: &Node) -> Vec<roster::Process> {
    let procs: Vec<_> = (0..6).map(|_| node.new_process()).collect();
    procs[0].register("user/0", &"not a user").unwrap();
    for (i, p) in procs.iter().enumerate().skip(1) {
        let age = 10 * i as u8;
        p.register(&format!("user/{i}"), &User { age }).unwrap();
        p.join("team", &User { age }).unwrap();
    }
    procs[0].join("team", &7u32).unwrap();
    procs
}

#[tokio::test]
async fn select_as_decodes_meta_once_per_entry_and_counts_what_does_not_decode() {
    let node = node();
    let procs = users(&node);
    let mut seen = Vec::new();

    let adults = node
        .default_scope()
        .select_as::<User, _>(Table::Names, Some("user/"), 10, |key, user| {
            seen.push(key.clone());
            user.age >= 30
        })
        .unwrap();

    assert_eq!(seen, ["user/1", "user/2", "user/3", "user/4", "user/5"]);
    assert_eq!(adults.undecodable, 1);
    assert_eq!(
        adults.items,
        (3..=5)
            .map(|i| Decoded {
                key: format!("user/{i}").into(),
                pid: procs[i].pid(),
                meta: User { age: 10 * i as u8 },
            })
            .collect::<Vec<_>>()
    );
    let members = node
        .default_scope()
        .select_as::<User, _>(Table::Groups, None, 10, |_, user| user.age < 30)
        .unwrap();
    assert_eq!(members.items.len(), 2);
    assert_eq!(members.undecodable, 1);
}

#[tokio::test]
async fn select_as_stops_at_its_limit() {
    let node = node();
    let _users = users(&node);
    let mut calls = 0;
    let first = node
        .default_scope()
        .select_as::<User, _>(Table::Names, Some("user/"), 2, |_, _| {
            calls += 1;
            true
        })
        .unwrap();
    let keys: Vec<&str> = first.items.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["user/1", "user/2"]);
    assert_eq!(calls, 2, "the scan stops once the limit is reached");
    assert_eq!(first.undecodable, 1, "user/0 came before the limit");
    let none = node
        .default_scope()
        .select_as::<User, _>(Table::Names, None, 0, |_, _| panic!("never called"))
        .unwrap();
    assert!(none.items.is_empty());
    assert!(matches!(
        node.default_scope()
            .select_as::<User, _>(Table::Names, Some("user"), 1, |_, _| true),
        Err(KeyError::NotAPrefix(_))
    ));
}

#[tokio::test]
async fn count_match_as_counts_matches_and_undecodable_entries() {
    let node = node();
    let _users = users(&node);
    assert_eq!(
        node.default_scope()
            .count_match_as::<User, _>(Table::Groups, None, |key, user| {
                key == "team" && user.age > 20
            }),
        Ok(Counted {
            matched: 3,
            undecodable: 1
        })
    );
    assert_eq!(
        node.default_scope()
            .count_match_as::<u32, _>(Table::Groups, None, |_, n| *n == 7),
        Ok(Counted {
            matched: 1,
            undecodable: 5
        })
    );
    assert!(matches!(
        node.default_scope()
            .count_match_as::<User, _>(Table::Names, Some("user"), |_, _| true),
        Err(KeyError::NotAPrefix(_))
    ));
}

#[tokio::test]
async fn a_panicking_predicate_leaves_the_scope_working() {
    let node = node();
    let procs = users(&node);
    for table in [Table::Names, Table::Groups] {
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            node.default_scope()
                .select_as::<User, _>(table, None, 10, |_, _| panic!("a buggy predicate"))
        }));
        assert!(panicked.is_err());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            node.default_scope()
                .count_match_as::<User, _>(table, None, |_, _| panic!("a buggy predicate"))
        }));
        assert!(panicked.is_err());
    }
    // Writers and readers of every key go on as before.
    let newcomer = node.new_process();
    newcomer.register("user/6", &User { age: 60 }).unwrap();
    procs[1].unregister("user/1").unwrap();
    newcomer.join("team", &User { age: 60 }).unwrap();
    let names = node
        .default_scope()
        .select_as::<User, _>(Table::Names, Some("user/"), 10, |_, _| true)
        .unwrap();
    assert_eq!(names.items.len(), 5);
    assert_eq!(node.default_scope().member_count("team"), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_counts_nodes_it_handed_the_frame_to_and_nodes_without_a_link() {
    let a = start_clustered(Node::builder(), "a", cluster_config("dispatch", &[]));
    let b = start_clustered(Node::builder(), "b", cluster_config("dispatch", &[&a]));
    eventually("a and b linked", || fully_linked(&[&a, &b])).await;
    let mut far = b.new_process();
    far.join("g", &()).unwrap();
    let mut near = a.new_process();
    near.join("g", &()).unwrap();
    eventually("a sees b's member", || {
        a.default_scope().member_count("g") == 2
    })
    .await;

    let sent = a.default_scope().dispatch("g", &1u8).unwrap();
    assert_eq!(
        sent,
        Dispatched {
            local: 1,
            remote_nodes: 1,
            ..Dispatched::default()
        },
        "b's member is not counted: only the node the frame went to"
    );
    assert_eq!(within("b's member gets it", far.recv::<u8>()).await, Ok(1));
    assert_eq!(near.try_recv::<u8>(), Ok(1));

    // Links closed, entries kept: b's member is still listed, but b cannot be reached.
    a.cluster().sever_links(std::time::Duration::from_secs(60));
    eventually("a has no link", || a.cluster().peers().is_empty()).await;
    assert_eq!(a.default_scope().member_count("g"), 2);
    let sent = a.default_scope().dispatch("g", &2u8).unwrap();
    assert_eq!(
        sent,
        Dispatched {
            local: 1,
            remote_unreachable: 1,
            ..Dispatched::default()
        }
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn pages_of_names_and_groups_hold_every_key_that_lives_throughout_exactly_once() {
    let node = node();
    let scope = node.default_scope();
    let keep = node.new_process();
    for i in 0..20 {
        keep.register(&format!("k/{i:02}"), &()).unwrap();
        keep.join(&format!("g/{i:02}"), &()).unwrap();
    }
    let mut churn = Vec::new();
    let mut names = Vec::new();
    let mut groups = Vec::new();
    let mut page = scope.names("k/", 3).unwrap();
    let mut group_page = scope.groups("g/", 3).unwrap();
    let mut round = 0;
    while !page.is_empty() || !group_page.is_empty() {
        names.extend(page.iter().map(|(k, _)| k.to_string()));
        groups.extend(group_page.iter().map(ToString::to_string));
        // Keys come and go before and after the cursor between pages.
        let p = node.new_process();
        p.register(&format!("k/{round:02}a"), &()).unwrap();
        p.join(&format!("g/{round:02}a"), &()).unwrap();
        churn.push(p);
        if round % 2 == 0 {
            churn.remove(0);
        }
        round += 1;
        page = match page.last() {
            Some((last, _)) => scope.names_after("k/", last, 3).unwrap(),
            None => Vec::new(),
        };
        group_page = match group_page.last() {
            Some(last) => scope.groups_after("g/", last, 3).unwrap(),
            None => Vec::new(),
        };
    }
    let lasting = |prefix: &str, seen: &[String]| {
        let kept: Vec<&String> = seen.iter().filter(|k| !k.ends_with('a')).collect();
        let want: Vec<String> = (0..20).map(|i| format!("{prefix}{i:02}")).collect();
        assert_eq!(kept, want.iter().collect::<Vec<_>>(), "each once, in order");
    };
    lasting("k/", &names);
    lasting("g/", &groups);
    assert!(matches!(
        scope.names_after("k", "k/01", 3),
        Err(KeyError::NotAPrefix(_))
    ));
}
