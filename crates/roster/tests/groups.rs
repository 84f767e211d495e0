//! Process groups: join, leave, members (exact and prefix), limits, counts and keys_of.

mod common;

use common::{assert_quiet, meta, node, single};
use roster::{EventKind, KeyError, Pattern, Reason, RegistryError};

#[tokio::test]
async fn joining_a_group_emits_joined_and_lists_the_member_with_its_meta() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();

    p.join("room/1", &"alice").unwrap();

    let members = node.default_scope().members("room/1");
    assert_eq!(members.pids(), [p.pid()]);
    assert_eq!(members.iter().next().unwrap().meta(), &meta("alice"));
    assert_eq!(node.default_scope().groups_of(p.pid()), ["room/1"]);
    let event = single(&mut events);
    assert_eq!(event.kind, EventKind::Joined);
    assert_eq!((event.key.as_str(), event.pid), ("room/1", p.pid()));
    assert_eq!(event.meta, meta("alice"));
    assert_eq!(event.previous_meta, None);
    assert_eq!(event.reason, Reason::Requested);
}

#[tokio::test]
async fn joining_again_with_new_meta_updates_it_and_reports_the_previous_meta() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let (a, b) = (node.new_process(), node.new_process());
    a.join("g", &1u8).unwrap();
    b.join("g", &1u8).unwrap();
    let _ = (single(&mut events), single(&mut events));

    a.join("g", &2u8).unwrap();

    let members = node.default_scope().members("g").to_vec();
    assert_eq!(members.len(), 2, "an update adds no second membership");
    assert_eq!(members[0].pid(), a.pid(), "an update keeps the join order");
    assert_eq!(members[0].meta(), &meta(&2u8));
    assert_eq!(node.default_scope().membership_count(), 2);
    let event = single(&mut events);
    assert_eq!(event.kind, EventKind::Joined);
    assert_eq!(event.pid, a.pid());
    assert_eq!(event.meta, meta(&2u8));
    assert_eq!(event.previous_meta, Some(meta(&1u8)));
}

#[tokio::test]
async fn joining_again_with_the_same_meta_changes_nothing_and_emits_nothing() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let p = node.new_process();
    p.join("g", &"m").unwrap();
    let _ = single(&mut events);

    p.join("g", &"m").unwrap();

    assert_eq!(node.default_scope().member_count("g"), 1);
    assert_eq!(node.default_scope().membership_count(), 1);
    assert_quiet(&mut events);
}

#[tokio::test]
async fn leaving_a_group_emits_left_and_keeps_the_other_members_in_order() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let (a, b, c) = (node.new_process(), node.new_process(), node.new_process());
    for p in [&a, &b, &c] {
        p.join("g", &()).unwrap();
        let _ = single(&mut events);
    }

    b.leave("g").unwrap();

    assert_eq!(node.default_scope().members("g").pids(), [a.pid(), c.pid()]);
    assert!(node.default_scope().groups_of(b.pid()).is_empty());
    assert_eq!(node.default_scope().membership_count(), 2);
    let event = single(&mut events);
    assert_eq!((event.kind, event.pid), (EventKind::Left, b.pid()));
    assert_eq!(event.reason, Reason::Requested);
}

#[tokio::test]
async fn leaving_a_group_one_is_not_in_fails_with_not_in_group() {
    let node = node();
    let mut events = node.default_scope().subscribe(Pattern::All).unwrap();
    let (member, stranger) = (node.new_process(), node.new_process());
    member.join("g", &()).unwrap();
    let _ = single(&mut events);

    assert_eq!(
        stranger.leave("g"),
        Err(RegistryError::NotInGroup { key: "g".into() })
    );
    assert_eq!(
        stranger.leave("empty"),
        Err(RegistryError::NotInGroup {
            key: "empty".into()
        })
    );
    member.leave("g").unwrap();
    assert_eq!(
        member.leave("g"),
        Err(RegistryError::NotInGroup { key: "g".into() })
    );
    let _ = single(&mut events);
    assert_quiet(&mut events);
}

#[tokio::test]
async fn members_in_join_order_with_each_member_s_meta() {
    let node = node();
    let procs: Vec<_> = (0..4).map(|_| node.new_process()).collect();
    for (i, p) in procs.iter().enumerate().rev() {
        p.join("g", &(i as u8)).unwrap();
    }
    let members = node.default_scope().members("g").to_vec();
    let expected: Vec<_> = procs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, p)| (p.pid(), meta(&(i as u8))))
        .collect();
    let found: Vec<_> = members
        .iter()
        .map(|m| (m.pid(), m.meta().clone()))
        .collect();
    assert_eq!(found, expected);
    assert_eq!(node.default_scope().members("g").len(), 4);
    assert!(!node.default_scope().members("g").is_empty());
    assert_eq!((&node.default_scope().members("g")).into_iter().count(), 4);
}

#[tokio::test]
async fn a_member_list_taken_before_members_die_counts_only_the_living() {
    let node = node();
    // Past 256 members a group is a tree; counts must agree with iteration either way.
    let mut procs: Vec<_> = (0..300).map(|_| node.new_process()).collect();
    for p in &procs {
        p.join("g", &()).unwrap();
    }
    let before = node.default_scope().members("g");
    assert_eq!(before.len(), 300);
    assert_eq!(node.default_scope().members_limited("g", 10).len(), 10);
    procs.truncate(290);
    assert_eq!(before.len(), 290, "taken before ten members died");
    assert_eq!(before.iter().count(), 290);
    assert_eq!(node.default_scope().members("g").len(), 290);
    assert_eq!(node.default_scope().member_count("g"), 290);
}

#[tokio::test]
async fn a_key_ending_in_a_slash_queries_every_group_under_it_in_key_order() {
    let node = node();
    let (a, b, c, d) = (
        node.new_process(),
        node.new_process(),
        node.new_process(),
        node.new_process(),
    );
    b.join("room/2", &()).unwrap();
    a.join("room/1", &()).unwrap();
    c.join("room/1", &()).unwrap();
    d.join("room", &()).unwrap();
    d.join("roomy/1", &()).unwrap();
    d.join("room/2/sub", &()).unwrap();

    assert_eq!(
        node.default_scope().members("room/").pids(),
        [a.pid(), c.pid(), b.pid(), d.pid()],
        "room/1 (join order), room/2, room/2/sub; not room or roomy/1"
    );
    assert_eq!(node.default_scope().members("room/2/").pids(), [d.pid()]);
    assert_eq!(node.default_scope().members("room").pids(), [d.pid()]);
    assert!(node.default_scope().members("nothing/").is_empty());
    assert_eq!(node.default_scope().member_count("room/"), 4);
    assert_eq!(
        node.default_scope().groups("room/", 10).unwrap(),
        ["room/1", "room/2", "room/2/sub"]
    );
    assert_eq!(
        node.default_scope().groups("room/", 2).unwrap(),
        ["room/1", "room/2"]
    );
    assert_eq!(
        node.default_scope().groups("", 10).unwrap(),
        ["room", "room/1", "room/2", "room/2/sub", "roomy/1"]
    );
    assert_eq!(
        node.default_scope().groups("room", 10),
        Err(KeyError::NotAPrefix("room".into()))
    );
}

#[tokio::test]
async fn a_member_limit_applies_across_the_groups_of_a_prefix() {
    let node = node();
    let procs: Vec<_> = (0..5).map(|_| node.new_process()).collect();
    procs[0].join("room/1", &()).unwrap();
    procs[1].join("room/1", &()).unwrap();
    procs[2].join("room/2", &()).unwrap();
    procs[3].join("room/2", &()).unwrap();
    procs[4].join("room/3", &()).unwrap();

    assert_eq!(
        node.default_scope().members_limited("room/", 3).pids(),
        [procs[0].pid(), procs[1].pid(), procs[2].pid()]
    );
    assert_eq!(node.default_scope().members_limited("room/", 3).len(), 3);
    assert_eq!(node.default_scope().members_limited("room/", 0).len(), 0);
    assert_eq!(node.default_scope().members_limited("room/", 99).len(), 5);
    assert_eq!(
        node.default_scope().members_limited("room/2", 1).pids(),
        [procs[2].pid()]
    );
}

#[tokio::test]
async fn a_member_limit_counts_only_live_members() {
    let node = node();
    let procs: Vec<_> = (0..4).map(|_| node.new_process()).collect();
    procs[0].join("room/1", &()).unwrap();
    procs[1].join("room/1", &()).unwrap();
    procs[2].join("room/2", &()).unwrap();
    procs[3].join("room/2", &()).unwrap();
    node.kill(procs[0].pid());
    assert_eq!(
        node.default_scope().members_limited("room/", 2).pids(),
        [procs[1].pid(), procs[2].pid()]
    );
}

#[tokio::test]
async fn a_local_member_limit_applies_across_groups_and_skips_dead_members() {
    let node = node();
    let procs: Vec<_> = (0..4).map(|_| node.new_process()).collect();
    procs[0].join("room/1", &()).unwrap();
    procs[1].join("room/1", &()).unwrap();
    procs[2].join("room/2", &()).unwrap();
    procs[3].join("room/3", &()).unwrap();
    node.kill(procs[0].pid());
    let pids = |members: Vec<roster::Member>| members.iter().map(|m| m.pid()).collect::<Vec<_>>();

    assert_eq!(
        pids(node.default_scope().local_members_limited("room/", 2)),
        [procs[1].pid(), procs[2].pid()]
    );
    assert!(
        node.default_scope()
            .local_members_limited("room/", 0)
            .is_empty()
    );
    assert_eq!(
        node.default_scope()
            .local_members_limited("room/", 99)
            .len(),
        3
    );
    assert_eq!(
        node.default_scope().local_members_limited("room/3", 1),
        node.default_scope().local_members("room/3")
    );
}

#[tokio::test]
async fn local_members_and_counts_cover_this_node_s_processes() {
    let node = node();
    let (a, b) = (node.new_process(), node.new_process());
    a.join("g/1", &"a").unwrap();
    b.join("g/1", &"b").unwrap();
    b.join("g/2", &"b").unwrap();

    let local = node.default_scope().local_members("g/1");
    assert_eq!(
        local.iter().map(|m| m.pid()).collect::<Vec<_>>(),
        [a.pid(), b.pid()]
    );
    assert_eq!(local[1].meta(), &meta("b"));
    assert_eq!(node.default_scope().local_members("g/").len(), 3);
    assert_eq!(node.default_scope().member_count("g/1"), 2);
    assert_eq!(node.default_scope().local_member_count("g/1"), 2);
    assert_eq!(node.default_scope().member_count("g/"), 3);
    assert_eq!(node.default_scope().local_member_count("g/"), 3);
    assert_eq!(node.default_scope().member_count("g/3"), 0);
    assert_eq!(node.default_scope().local_member_count("g/3"), 0);
    assert_eq!(node.default_scope().membership_count(), 3);
}

#[tokio::test]
async fn keys_of_lists_a_process_s_groups_in_key_order() {
    let node = node();
    let other = node.connect("other").unwrap();
    let p = node.new_process();
    p.join("z", &()).unwrap();
    p.join("a/1", &()).unwrap();
    p.join("m", &()).unwrap();
    p.register("a/name", &()).unwrap();
    other.join(&p, "elsewhere", &()).unwrap();

    assert_eq!(node.default_scope().groups_of(p.pid()), ["a/1", "m", "z"]);
    assert_eq!(other.groups_of(p.pid()), ["elsewhere"]);
    p.leave("m").unwrap();
    assert_eq!(node.default_scope().groups_of(p.pid()), ["a/1", "z"]);
    assert!(
        node.default_scope()
            .groups_of(node.new_process().pid())
            .is_empty()
    );
    let pid = p.pid();
    drop(p);
    assert!(node.default_scope().groups_of(pid).is_empty());
}

#[tokio::test]
async fn a_registered_process_is_not_a_member() {
    let node = node();
    let p = node.new_process();
    p.register("k", &()).unwrap();
    assert!(node.default_scope().members("k").is_empty());
    assert_eq!(node.default_scope().member_count("k"), 0);
    assert_eq!(node.default_scope().membership_count(), 0);
    assert!(node.default_scope().groups("", 10).unwrap().is_empty());

    let q = node.new_process();
    q.join("k", &()).unwrap();
    assert_eq!(node.default_scope().whereis("k"), Some(p.pid()));
    assert_eq!(node.default_scope().members("k").pids(), [q.pid()]);
    p.join("k", &()).unwrap();
    assert_eq!(node.default_scope().members("k").pids(), [q.pid(), p.pid()]);
    p.leave("k").unwrap();
    assert_eq!(
        node.default_scope().whereis("k"),
        Some(p.pid()),
        "leaving keeps the name"
    );
    p.unregister("k").unwrap();
    assert_eq!(
        node.default_scope().members("k").pids(),
        [q.pid()],
        "unregistering keeps the membership"
    );
}

#[tokio::test]
async fn members_never_include_dead_processes() {
    let node = node();
    let (alive, killed, dropped) = (node.new_process(), node.new_process(), node.new_process());
    for p in [&alive, &killed, &dropped] {
        p.join("g/1", &()).unwrap();
    }
    node.kill(killed.pid());
    drop(dropped);

    assert_eq!(node.default_scope().members("g/1").pids(), [alive.pid()]);
    assert_eq!(node.default_scope().members("g/").pids(), [alive.pid()]);
    assert_eq!(node.default_scope().member_count("g/1"), 1);
    assert_eq!(node.default_scope().local_members("g/1").len(), 1);
    assert_eq!(node.default_scope().membership_count(), 1);
}

#[tokio::test]
async fn a_members_snapshot_skips_members_that_die_after_it_was_taken() {
    let node = node();
    let (a, b) = (node.new_process(), node.new_process());
    a.join("g", &()).unwrap();
    b.join("g", &()).unwrap();
    let snapshot = node.default_scope().members("g");
    assert_eq!(snapshot.len(), 2);

    node.kill(a.pid());

    assert_eq!(snapshot.pids(), [b.pid()]);
    assert_eq!(snapshot.len(), 1);
}

#[tokio::test]
async fn a_process_may_be_a_member_of_many_groups_and_groups_are_per_scope() {
    let node = node();
    let other = node.connect("other").unwrap();
    let p = node.new_process();
    for i in 0..10 {
        p.join(&format!("g/{i}"), &i).unwrap();
    }
    other.join(&p, "g/0", &()).unwrap();
    assert_eq!(node.default_scope().membership_count(), 10);
    assert_eq!(other.membership_count(), 1);
    assert_eq!(other.members("g/").pids(), [p.pid()]);
    drop(p);
    assert_eq!(node.default_scope().membership_count(), 0);
    assert_eq!(other.membership_count(), 0);
    assert!(node.default_scope().groups("", 100).unwrap().is_empty());
}

#[tokio::test]
async fn queries_with_invalid_keys_find_no_members() {
    let node = node();
    let p = node.new_process();
    p.join("g", &()).unwrap();
    assert!(node.default_scope().members("").is_empty());
    assert_eq!(node.default_scope().member_count(""), 0);
    assert!(node.default_scope().local_members("").is_empty());
}

/// A group past `MemberList::FLAT_MAX` members is held as a tree and one that shrinks is
/// flattened again: through both, members keep their join order and meta, counts and
/// events stay exact.
#[tokio::test]
async fn a_large_group_keeps_join_order_and_meta_as_it_grows_and_shrinks() {
    let node = node();
    let mut events = node
        .default_scope()
        .subscribe(Pattern::from("big"))
        .unwrap();
    let procs: Vec<_> = (0..700).map(|_| node.new_process()).collect();
    let mut model: Vec<(roster::Pid, u32)> = Vec::new();
    let check = |model: &[(roster::Pid, u32)]| {
        let members = node.default_scope().members("big").to_vec();
        let got: Vec<_> = members
            .iter()
            .map(|m| (m.pid(), m.meta().decode::<u32>().unwrap()))
            .collect();
        assert_eq!(got, model);
        assert_eq!(node.default_scope().membership_count(), model.len());
        assert_eq!(node.default_scope().member_count("big"), model.len());
    };
    for (i, p) in procs.iter().enumerate() {
        p.join("big", &(i as u32)).unwrap();
        model.push((p.pid(), i as u32));
    }
    check(&model);
    // Meta updates keep each member's place.
    for (i, p) in procs.iter().enumerate().step_by(7) {
        p.join("big", &(i as u32 + 1000)).unwrap();
        model[i].1 = i as u32 + 1000;
    }
    check(&model);
    // Every third leaves, then rejoins at the end.
    for p in procs.iter().step_by(3) {
        p.leave("big").unwrap();
        model.retain(|(pid, _)| *pid != p.pid());
    }
    check(&model);
    for p in procs.iter().step_by(3) {
        p.join("big", &7u32).unwrap();
        model.push((p.pid(), 7));
    }
    check(&model);
    // Shrink below the flat size: the order survives the flattening.
    for p in &procs[..650] {
        assert!(node.kill(p.pid()));
        model.retain(|(pid, _)| *pid != p.pid());
    }
    check(&model);
    let received = common::drain(&mut events).len();
    let joins = 700 + 700usize.div_ceil(7) + 2 * 700usize.div_ceil(3);
    assert_eq!(received, joins + 650, "one event per change");
}
