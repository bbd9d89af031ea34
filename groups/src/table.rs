//! The group table (CHECKLIST §1.9).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};

/// `WSASocket`/`WSAAccept` `g` value asking for a new unconstrained group (CHECKLIST §1.2).
pub const SG_UNCONSTRAINED_GROUP: u32 = 0x01;
/// `WSASocket`/`WSAAccept` `g` value asking for a new constrained group (CHECKLIST §1.2).
pub const SG_CONSTRAINED_GROUP: u32 = 0x02;
/// The first group id handed out. Ids below it are never used: 0 means "no group", 1 and 2 are
/// [`SG_UNCONSTRAINED_GROUP`] and [`SG_CONSTRAINED_GROUP`], and starting well above them
/// keeps a confused id from looking plausible.
pub const FIRST_GROUP_ID: u32 = 0x100;

/// The process-wide source of group ids: every [`GroupTable::new`] table in the process draws
/// from it, so ids are unique across all stacks (providers) of the process.
static NEXT_GROUP_ID: AtomicU32 = AtomicU32::new(FIRST_GROUP_ID);

/// A socket group id (the spec's `GROUP`, an `unsigned int`); never 0, 1 or 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(u32);

impl GroupId {
    /// The id as `getsockopt(SO_GROUP_ID)` reports it.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group {:#x}", self.0)
    }
}

/// The two kinds of group (CHECKLIST §1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKind {
    /// Any sockets of the provider.
    Unconstrained,
    /// Connection-oriented sockets only, all connected to the same remote address (D-38: the
    /// same IP address; ports may differ).
    Constrained,
}

/// What a `g` parameter asks for (`WSASocket`, and `*g` in `WSAAccept`'s condition function).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRequest {
    /// `g = 0`: no group operation.
    None,
    /// `SG_UNCONSTRAINED_GROUP` or `SG_CONSTRAINED_GROUP`: a new group with the socket as its
    /// creator and first member.
    Create(GroupKind),
    /// Any other value: join the existing group with this id.
    Join(GroupId),
}

impl GroupRequest {
    /// Reads a `g` parameter. Every value other than 0, 1 and 2 names a group to join; whether
    /// that group exists is [`GroupTable`]'s question ([`GroupError::UnknownGroup`]).
    pub fn from_g(g: u32) -> GroupRequest {
        match g {
            0 => GroupRequest::None,
            SG_UNCONSTRAINED_GROUP => GroupRequest::Create(GroupKind::Unconstrained),
            SG_CONSTRAINED_GROUP => GroupRequest::Create(GroupKind::Constrained),
            id => GroupRequest::Join(GroupId(id)),
        }
    }
}

/// Why a group operation was refused. The Windows Sockets code each maps to is given per
/// variant (CHECKLIST §1.2, §1.3, §1.9, D-26).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupError {
    /// No live group has this id (never existed, or its last member left): `WSAEINVAL`
    /// ("The parameter *g* specified is not valid").
    UnknownGroup(GroupId),
    /// A constrained group was asked to take a socket that is not connection-oriented:
    /// `WSAEINVAL` (CHECKLIST 37, 38).
    ConnectionOrientedOnly,
    /// The member is already in a group (group membership is decided once, at creation):
    /// `WSAEINVAL`.
    AlreadyInGroup(GroupId),
    /// The socket is in no group, so it has no `SO_GROUP_PRIORITY`: `WSAENOPROTOOPT`.
    NotInGroup,
    /// `SO_GROUP_PRIORITY` must be non-negative: `WSAEINVAL` (D-26).
    NegativePriority(i32),
    /// A constrained group's member tried to connect to (or be accepted from) another address
    /// than the one the group's connections already use: `WSAEINVAL`.
    DestinationMismatch {
        /// The group concerned.
        group: GroupId,
        /// The address the group's other connections use.
        expected: IpAddr,
        /// The address asked for.
        got: IpAddr,
    },
    /// Every possible id is held by a live group: `WSAENOBUFS`.
    IdsExhausted,
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::UnknownGroup(g) => write!(f, "{g} does not exist"),
            GroupError::ConnectionOrientedOnly => {
                f.write_str("constrained groups take connection-oriented sockets only")
            }
            GroupError::AlreadyInGroup(g) => write!(f, "the socket is already in {g}"),
            GroupError::NotInGroup => f.write_str("the socket is not in a group"),
            GroupError::NegativePriority(p) => {
                write!(f, "group priority {p} is negative")
            }
            GroupError::DestinationMismatch {
                group,
                expected,
                got,
            } => write!(
                f,
                "{group} is constrained to {expected}; {got} is not consistent with it"
            ),
            GroupError::IdsExhausted => f.write_str("no group id is free"),
        }
    }
}

impl std::error::Error for GroupError {}

/// One socket's place in a group, as the scheduler and `getsockopt` see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// The group.
    pub group: GroupId,
    /// The group's kind.
    pub kind: GroupKind,
    /// `SO_GROUP_PRIORITY`: non-negative, 0 (the default) is the highest.
    pub priority: i32,
    /// Whether this socket created the group (only the creator may set group QoS).
    pub creator: bool,
}

/// A group as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo<M> {
    /// The group's kind.
    pub kind: GroupKind,
    /// The socket that created the group, while it is a member; `None` once it has left (the
    /// group lives on, and no other member becomes the creator).
    pub creator: Option<M>,
    /// How many sockets are in the group (at least 1: empty groups do not exist).
    pub members: usize,
    /// Constrained groups: the remote address their connections use, once a member has
    /// connected. Always `None` for unconstrained groups.
    pub destination: Option<IpAddr>,
}

/// What [`GroupTable::leave`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Departure {
    /// The group the member left.
    pub group: GroupId,
    /// Whether it was the last member, so the group (and its id) is gone.
    pub dissolved: bool,
}

#[derive(Debug)]
struct Group<M> {
    kind: GroupKind,
    creator: Option<M>,
    /// In joining order.
    members: Vec<M>,
}

#[derive(Debug, Clone, Copy)]
struct Member {
    group: GroupId,
    priority: i32,
    /// Constrained groups: the remote address of this member's connection.
    remote: Option<IpAddr>,
}

#[derive(Debug)]
enum IdSource {
    Process,
    Local(u32),
}

/// Every live socket group of one provider, and which socket is in which (CHECKLIST §1.9).
///
/// Ids: a table made with [`GroupTable::new`] draws ids from one process-wide counter, so
/// groups of different tables (stacks) in the process never share an id while both are alive
/// — unless 2³² − 256 groups were created over the process's life, after which the counter
/// wraps and only ids live *in this table* are skipped. An id is never handed out again while
/// its group is alive; after the group dissolves the id is not reused until the counter wraps.
///
/// A group is alive from its creation until its last member [`leave`](GroupTable::leave)s;
/// the creator leaving does not end it.
#[derive(Debug)]
pub struct GroupTable<M> {
    groups: HashMap<GroupId, Group<M>>,
    members: HashMap<M, Member>,
    ids: IdSource,
}

impl<M: Copy + Eq + Hash> Default for GroupTable<M> {
    fn default() -> Self {
        GroupTable::new()
    }
}

impl<M: Copy + Eq + Hash> GroupTable<M> {
    /// An empty table drawing ids from the process-wide counter.
    pub fn new() -> GroupTable<M> {
        GroupTable {
            groups: HashMap::new(),
            members: HashMap::new(),
            ids: IdSource::Process,
        }
    }

    /// An empty table with its own id counter, whose first id is `next` (values below
    /// [`FIRST_GROUP_ID`] are skipped). Ids are then unique within this table only; meant
    /// for tests (for example of the counter wrapping).
    pub fn starting_at(next: u32) -> GroupTable<M> {
        GroupTable {
            groups: HashMap::new(),
            members: HashMap::new(),
            ids: IdSource::Local(next),
        }
    }

    fn next_id(&mut self) -> Result<GroupId, GroupError> {
        let usable = u64::from(u32::MAX - FIRST_GROUP_ID) + 1;
        if self.groups.len() as u64 >= usable {
            return Err(GroupError::IdsExhausted);
        }
        loop {
            let id = match &mut self.ids {
                IdSource::Process => NEXT_GROUP_ID.fetch_add(1, Ordering::Relaxed),
                IdSource::Local(next) => {
                    let id = *next;
                    *next = next.wrapping_add(1);
                    id
                }
            };
            if id >= FIRST_GROUP_ID && !self.groups.contains_key(&GroupId(id)) {
                return Ok(GroupId(id));
            }
        }
    }

    /// Creates a group of `kind` with `member` as its creator and only member, priority 0.
    /// `connection_oriented` says whether `member` is (constrained groups take nothing else).
    pub fn create(
        &mut self,
        kind: GroupKind,
        member: M,
        connection_oriented: bool,
    ) -> Result<GroupId, GroupError> {
        if let Some(m) = self.members.get(&member) {
            return Err(GroupError::AlreadyInGroup(m.group));
        }
        if kind == GroupKind::Constrained && !connection_oriented {
            return Err(GroupError::ConnectionOrientedOnly);
        }
        let id = self.next_id()?;
        self.groups.insert(
            id,
            Group {
                kind,
                creator: Some(member),
                members: vec![member],
            },
        );
        self.members.insert(member, Member::new(id));
        Ok(id)
    }

    /// Adds `member` to the live group `group`, priority 0, if the group's requirements are
    /// met (a constrained group takes connection-oriented sockets only; their destination is
    /// checked when they connect, [`GroupTable::connect`]).
    pub fn join(
        &mut self,
        group: GroupId,
        member: M,
        connection_oriented: bool,
    ) -> Result<(), GroupError> {
        self.check_join(group, member, connection_oriented)?;
        if let Some(g) = self.groups.get_mut(&group) {
            g.members.push(member);
        }
        self.members.insert(member, Member::new(group));
        Ok(())
    }

    fn check_join(
        &self,
        group: GroupId,
        member: M,
        connection_oriented: bool,
    ) -> Result<&Group<M>, GroupError> {
        if let Some(m) = self.members.get(&member) {
            return Err(GroupError::AlreadyInGroup(m.group));
        }
        let g = self
            .groups
            .get(&group)
            .ok_or(GroupError::UnknownGroup(group))?;
        if g.kind == GroupKind::Constrained && !connection_oriented {
            return Err(GroupError::ConnectionOrientedOnly);
        }
        Ok(g)
    }

    /// Carries out a `g` parameter for a new socket: nothing, create, or join. Returns the
    /// group the socket is now in, if any.
    pub fn apply(
        &mut self,
        request: GroupRequest,
        member: M,
        connection_oriented: bool,
    ) -> Result<Option<GroupId>, GroupError> {
        match request {
            GroupRequest::None => Ok(None),
            GroupRequest::Create(kind) => self.create(kind, member, connection_oriented).map(Some),
            GroupRequest::Join(id) => self
                .join(id, member, connection_oriented)
                .map(|()| Some(id)),
        }
    }

    /// [`GroupTable::apply`] for a socket that is already connected to `remote` (an accepted
    /// connection, `WSAAccept`'s `*g`): also checks and records the constrained group's
    /// destination. Either all of it happens or nothing does.
    pub fn admit(
        &mut self,
        request: GroupRequest,
        member: M,
        remote: IpAddr,
    ) -> Result<Option<GroupId>, GroupError> {
        if let GroupRequest::Join(id) = request {
            self.check_join(id, member, true)?;
            self.check_destination(id, None, remote)?;
        }
        let group = self.apply(request, member, true)?;
        if group.is_some() {
            self.connect(member, remote)?;
        }
        Ok(group)
    }

    /// The other members' common destination must be `remote` (constrained groups only).
    fn check_destination(
        &self,
        group: GroupId,
        except: Option<M>,
        remote: IpAddr,
    ) -> Result<(), GroupError> {
        let Some(g) = self.groups.get(&group) else {
            return Ok(());
        };
        if g.kind != GroupKind::Constrained {
            return Ok(());
        }
        let expected = g
            .members
            .iter()
            .filter(|m| Some(**m) != except)
            .find_map(|m| self.members.get(m).and_then(|m| m.remote));
        match expected {
            Some(expected) if expected != remote => Err(GroupError::DestinationMismatch {
                group,
                expected,
                got: remote,
            }),
            _ => Ok(()),
        }
    }

    /// Whether `member` may connect to `remote`: always for sockets outside constrained
    /// groups; in a constrained group, only to the address the other members' connections use
    /// (any, if none has connected). Changes nothing.
    pub fn check_connect(&self, member: M, remote: IpAddr) -> Result<(), GroupError> {
        match self.members.get(&member) {
            Some(m) => self.check_destination(m.group, Some(member), remote),
            None => Ok(()),
        }
    }

    /// [`GroupTable::check_connect`], then records `remote` as `member`'s destination: the
    /// first member of a constrained group to connect fixes the group's destination for the
    /// others. Sockets outside constrained groups record nothing.
    pub fn connect(&mut self, member: M, remote: IpAddr) -> Result<(), GroupError> {
        self.check_connect(member, remote)?;
        let constrained = self
            .members
            .get(&member)
            .and_then(|m| self.groups.get(&m.group))
            .is_some_and(|g| g.kind == GroupKind::Constrained);
        if constrained {
            if let Some(m) = self.members.get_mut(&member) {
                m.remote = Some(remote);
            }
        }
        Ok(())
    }

    /// Forgets `member`'s destination (its connect failed before it started): if no other
    /// member has connected, the constrained group's destination is open again.
    pub fn disconnect(&mut self, member: M) {
        if let Some(m) = self.members.get_mut(&member) {
            m.remote = None;
        }
    }

    /// Removes `member` from its group (`closesocket`, `WSACleanup`); the group dissolves with
    /// its last member. `None` if it was in no group.
    pub fn leave(&mut self, member: M) -> Option<Departure> {
        let m = self.members.remove(&member)?;
        let g = self.groups.get_mut(&m.group)?;
        g.members.retain(|x| *x != member);
        if g.creator == Some(member) {
            g.creator = None;
        }
        let dissolved = g.members.is_empty();
        if dissolved {
            self.groups.remove(&m.group);
        }
        Some(Departure {
            group: m.group,
            dissolved,
        })
    }

    /// Sets `SO_GROUP_PRIORITY`: non-negative, 0 is the highest.
    pub fn set_priority(&mut self, member: M, priority: i32) -> Result<(), GroupError> {
        let m = self
            .members
            .get_mut(&member)
            .ok_or(GroupError::NotInGroup)?;
        if priority < 0 {
            return Err(GroupError::NegativePriority(priority));
        }
        m.priority = priority;
        Ok(())
    }

    /// `SO_GROUP_PRIORITY` of `member` (0 until set).
    pub fn priority(&self, member: M) -> Result<i32, GroupError> {
        self.members
            .get(&member)
            .map(|m| m.priority)
            .ok_or(GroupError::NotInGroup)
    }

    /// The group `member` is in (`SO_GROUP_ID`; `None` reads as 0).
    pub fn group_of(&self, member: M) -> Option<GroupId> {
        self.members.get(&member).map(|m| m.group)
    }

    /// Everything about `member`'s place in its group.
    pub fn membership(&self, member: M) -> Option<Membership> {
        let m = self.members.get(&member)?;
        let g = self.groups.get(&m.group)?;
        Some(Membership {
            group: m.group,
            kind: g.kind,
            priority: m.priority,
            creator: g.creator == Some(member),
        })
    }

    /// Whether `member` created its group and is still in it (the `SIO_SET_GROUP_QOS` and
    /// `lpGQOS` rule).
    pub fn is_creator(&self, member: M) -> bool {
        self.membership(member).is_some_and(|m| m.creator)
    }

    /// The live group `group`, if it exists.
    pub fn group(&self, group: GroupId) -> Option<GroupInfo<M>> {
        let g = self.groups.get(&group)?;
        let destination = match g.kind {
            GroupKind::Constrained => g
                .members
                .iter()
                .find_map(|m| self.members.get(m).and_then(|m| m.remote)),
            GroupKind::Unconstrained => None,
        };
        Some(GroupInfo {
            kind: g.kind,
            creator: g.creator,
            members: g.members.len(),
            destination,
        })
    }

    /// Whether a group with this id is alive.
    pub fn contains(&self, group: GroupId) -> bool {
        self.groups.contains_key(&group)
    }

    /// The members of `group` with their priorities, in service order: lowest
    /// `SO_GROUP_PRIORITY` value first, equal priorities in joining order. Empty if the group
    /// does not exist.
    pub fn members(&self, group: GroupId) -> Vec<(M, i32)> {
        let mut out: Vec<(M, i32)> = self
            .groups
            .get(&group)
            .map(|g| {
                g.members
                    .iter()
                    .filter_map(|m| self.members.get(m).map(|x| (*m, x.priority)))
                    .collect()
            })
            .unwrap_or_default();
        // A stable sort keeps joining order among equal priorities.
        out.sort_by_key(|&(_, p)| p);
        out
    }

    /// Every grouped socket with its group id and priority (for the QoS scheduler), in no
    /// particular order.
    pub fn memberships(&self) -> impl Iterator<Item = (M, GroupId, i32)> + '_ {
        self.members.iter().map(|(m, x)| (*m, x.group, x.priority))
    }

    /// The live groups' ids, in no particular order.
    pub fn groups(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.groups.keys().copied()
    }

    /// Number of live groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether no group is alive.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

impl Member {
    fn new(group: GroupId) -> Member {
        Member {
            group,
            priority: 0,
            remote: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    #[test]
    fn requests_from_g() {
        assert_eq!(GroupRequest::from_g(0), GroupRequest::None);
        assert_eq!(
            GroupRequest::from_g(SG_UNCONSTRAINED_GROUP),
            GroupRequest::Create(GroupKind::Unconstrained)
        );
        assert_eq!(
            GroupRequest::from_g(SG_CONSTRAINED_GROUP),
            GroupRequest::Create(GroupKind::Constrained)
        );
        assert_eq!(
            GroupRequest::from_g(0x1234),
            GroupRequest::Join(GroupId(0x1234))
        );
    }

    #[test]
    fn create_makes_the_creator_the_first_member() {
        let mut t = GroupTable::new();
        let g = t.create(GroupKind::Unconstrained, 1u64, false).unwrap();
        assert!(g.get() >= FIRST_GROUP_ID);
        assert_eq!(t.group_of(1), Some(g));
        assert_eq!(t.priority(1), Ok(0));
        assert!(t.is_creator(1));
        let info = t.group(g).unwrap();
        assert_eq!(info.kind, GroupKind::Unconstrained);
        assert_eq!(info.creator, Some(1));
        assert_eq!(info.members, 1);
        assert_eq!(info.destination, None);
    }

    #[test]
    fn ids_are_distinct_within_and_across_tables() {
        let mut a = GroupTable::new();
        let mut b = GroupTable::new();
        let mut seen = HashSet::new();
        for i in 0..100u64 {
            assert!(seen.insert(a.create(GroupKind::Unconstrained, i, true).unwrap()));
            assert!(seen.insert(b.create(GroupKind::Constrained, i, true).unwrap()));
        }
        assert_eq!(a.len() + b.len(), 200);
    }

    #[test]
    fn dissolved_ids_are_not_handed_out_again() {
        let mut t = GroupTable::new();
        let g = t.create(GroupKind::Unconstrained, 1u64, true).unwrap();
        assert_eq!(
            t.leave(1),
            Some(Departure {
                group: g,
                dissolved: true
            })
        );
        let h = t.create(GroupKind::Unconstrained, 1, true).unwrap();
        assert_ne!(g, h);
        assert_eq!(t.join(g, 2, true), Err(GroupError::UnknownGroup(g)));
    }

    #[test]
    fn wrapping_counter_skips_reserved_and_live_ids() {
        let mut t = GroupTable::starting_at(u32::MAX);
        let last = t.create(GroupKind::Unconstrained, 1u64, true).unwrap();
        assert_eq!(last.get(), u32::MAX);
        // 0, 1, 2 and the rest below FIRST_GROUP_ID are skipped after the wrap.
        let first = t.create(GroupKind::Unconstrained, 2, true).unwrap();
        assert_eq!(first.get(), FIRST_GROUP_ID);
        // A live id is skipped when the counter reaches it again.
        let mut t = GroupTable::starting_at(FIRST_GROUP_ID);
        let a = t.create(GroupKind::Unconstrained, 1u64, true).unwrap();
        t.ids = IdSource::Local(FIRST_GROUP_ID);
        let b = t.create(GroupKind::Unconstrained, 2, true).unwrap();
        assert_eq!(a.get(), FIRST_GROUP_ID);
        assert_eq!(b.get(), FIRST_GROUP_ID + 1);
    }

    #[test]
    fn join_existing_group() {
        let mut t = GroupTable::new();
        let g = t.create(GroupKind::Unconstrained, 1u64, true).unwrap();
        t.join(g, 2, false).unwrap();
        assert_eq!(t.group_of(2), Some(g));
        assert!(!t.is_creator(2));
        assert_eq!(t.group(g).unwrap().members, 2);
    }

    #[test]
    fn join_unknown_group_fails() {
        let mut t: GroupTable<u64> = GroupTable::new();
        let ghost = GroupId(0xdead_beef);
        assert_eq!(t.join(ghost, 1, true), Err(GroupError::UnknownGroup(ghost)));
        assert_eq!(t.group_of(1), None);
        assert!(t.is_empty());
    }

    #[test]
    fn constrained_groups_take_connection_oriented_sockets_only() {
        let mut t = GroupTable::new();
        assert_eq!(
            t.create(GroupKind::Constrained, 1u64, false),
            Err(GroupError::ConnectionOrientedOnly)
        );
        assert!(t.is_empty());
        let g = t.create(GroupKind::Constrained, 2, true).unwrap();
        assert_eq!(t.join(g, 3, false), Err(GroupError::ConnectionOrientedOnly));
        assert_eq!(t.group_of(3), None);
        t.join(g, 4, true).unwrap();
    }

    #[test]
    fn a_member_joins_once() {
        let mut t = GroupTable::new();
        let g = t.create(GroupKind::Unconstrained, 1u64, true).unwrap();
        let h = t.create(GroupKind::Unconstrained, 2, true).unwrap();
        assert_eq!(t.join(h, 1, true), Err(GroupError::AlreadyInGroup(g)));
        assert_eq!(
            t.create(GroupKind::Unconstrained, 1, true),
            Err(GroupError::AlreadyInGroup(g))
        );
        assert_eq!(t.group(h).unwrap().members, 1);
    }

    #[test]
    fn apply_handles_each_request() {
        let mut t = GroupTable::new();
        assert_eq!(t.apply(GroupRequest::None, 1u64, true), Ok(None));
        assert_eq!(t.group_of(1), None);
        let g = t
            .apply(GroupRequest::from_g(SG_CONSTRAINED_GROUP), 2, true)
            .unwrap()
            .unwrap();
        assert_eq!(t.group(g).unwrap().kind, GroupKind::Constrained);
        assert_eq!(t.apply(GroupRequest::from_g(g.get()), 3, true), Ok(Some(g)));
        assert_eq!(
            t.apply(GroupRequest::from_g(g.get()), 4, false),
            Err(GroupError::ConnectionOrientedOnly)
        );
    }

    #[test]
    fn priorities_default_to_zero_and_must_be_non_negative() {
        let mut t = GroupTable::new();
        let g = t.create(GroupKind::Unconstrained, 1u64, true).unwrap();
        assert_eq!(t.priority(1), Ok(0));
        t.set_priority(1, 5).unwrap();
        assert_eq!(t.priority(1), Ok(5));
        assert_eq!(t.set_priority(1, -1), Err(GroupError::NegativePriority(-1)));
        assert_eq!(t.priority(1), Ok(5));
        t.set_priority(1, 0).unwrap();
        assert_eq!(t.membership(1).unwrap().priority, 0);
        assert_eq!(t.membership(1).unwrap().group, g);
    }

    #[test]
    fn priorities_need_a_group() {
        let mut t: GroupTable<u64> = GroupTable::new();
        assert_eq!(t.priority(9), Err(GroupError::NotInGroup));
        assert_eq!(t.set_priority(9, 1), Err(GroupError::NotInGroup));
        // Not being in a group is reported before the value is looked at.
        assert_eq!(t.set_priority(9, -1), Err(GroupError::NotInGroup));
    }

    #[test]
    fn members_come_in_service_order() {
        let mut t = GroupTable::new();
        let g = t.create(GroupKind::Unconstrained, 1u64, true).unwrap();
        for m in 2..=4 {
            t.join(g, m, true).unwrap();
        }
        t.set_priority(1, 2).unwrap();
        t.set_priority(2, 1).unwrap();
        t.set_priority(4, 1).unwrap();
        assert_eq!(t.members(g), vec![(3, 0), (2, 1), (4, 1), (1, 2)]);
        let mut all: Vec<_> = t.memberships().collect();
        all.sort();
        assert_eq!(all, vec![(1, g, 2), (2, g, 1), (3, g, 0), (4, g, 1)]);
        assert!(t.members(GroupId(7)).is_empty());
    }

    #[test]
    fn group_lives_until_its_last_member_leaves() {
        let mut t = GroupTable::new();
        let g = t.create(GroupKind::Unconstrained, 1u64, true).unwrap();
        t.join(g, 2, true).unwrap();
        assert_eq!(
            t.leave(1),
            Some(Departure {
                group: g,
                dissolved: false
            })
        );
        // The creator left: the group lives on, without a creator.
        let info = t.group(g).unwrap();
        assert_eq!(info.creator, None);
        assert_eq!(info.members, 1);
        assert!(!t.is_creator(2));
        // New sockets can still join by id.
        t.join(g, 3, true).unwrap();
        assert_eq!(t.leave(2).map(|d| d.dissolved), Some(false));
        assert_eq!(t.leave(3).map(|d| d.dissolved), Some(true));
        assert!(!t.contains(g));
        assert_eq!(t.leave(3), None);
        assert_eq!(t.join(g, 4, true), Err(GroupError::UnknownGroup(g)));
        assert_eq!(t.memberships().count(), 0);
    }

    #[test]
    fn first_connect_fixes_the_constrained_destination() {
        let mut t = GroupTable::new();
        let g = t.create(GroupKind::Constrained, 1u64, true).unwrap();
        t.join(g, 2, true).unwrap();
        t.join(g, 3, true).unwrap();
        // Before anyone connects, any address is fine.
        assert_eq!(t.check_connect(2, ip(9)), Ok(()));
        t.connect(1, ip(5)).unwrap();
        assert_eq!(t.group(g).unwrap().destination, Some(ip(5)));
        assert_eq!(
            t.connect(2, ip(6)),
            Err(GroupError::DestinationMismatch {
                group: g,
                expected: ip(5),
                got: ip(6)
            })
        );
        // Same address (any port: D-38) is fine.
        t.connect(2, ip(5)).unwrap();
        t.connect(3, ip(5)).unwrap();
    }

    #[test]
    fn lone_member_may_change_its_destination() {
        let mut t = GroupTable::new();
        let g = t.create(GroupKind::Constrained, 1u64, true).unwrap();
        t.connect(1, ip(5)).unwrap();
        // Its own earlier connection does not constrain a new attempt.
        t.connect(1, ip(6)).unwrap();
        assert_eq!(t.group(g).unwrap().destination, Some(ip(6)));
    }

    #[test]
    fn destination_reopens_when_its_connections_are_gone() {
        let mut t = GroupTable::new();
        let g = t.create(GroupKind::Constrained, 1u64, true).unwrap();
        t.join(g, 2, true).unwrap();
        t.join(g, 3, true).unwrap();
        t.connect(1, ip(5)).unwrap();
        t.disconnect(1);
        assert_eq!(t.group(g).unwrap().destination, None);
        t.connect(2, ip(7)).unwrap();
        t.leave(2);
        t.connect(3, ip(8)).unwrap();
    }

    #[test]
    fn unconstrained_groups_connect_anywhere() {
        let mut t = GroupTable::new();
        let g = t.create(GroupKind::Unconstrained, 1u64, true).unwrap();
        t.join(g, 2, true).unwrap();
        t.connect(1, ip(5)).unwrap();
        t.connect(2, ip(6)).unwrap();
        assert_eq!(t.group(g).unwrap().destination, None);
        // Sockets outside any group are not the table's business.
        t.connect(99, ip(1)).unwrap();
    }

    #[test]
    fn admit_checks_the_incoming_address() {
        let mut t = GroupTable::new();
        let g = t.create(GroupKind::Constrained, 1u64, true).unwrap();
        t.connect(1, ip(5)).unwrap();
        assert_eq!(
            t.admit(GroupRequest::Join(g), 2, ip(6)),
            Err(GroupError::DestinationMismatch {
                group: g,
                expected: ip(5),
                got: ip(6)
            })
        );
        // Nothing happened.
        assert_eq!(t.group_of(2), None);
        assert_eq!(t.group(g).unwrap().members, 1);
        assert_eq!(t.admit(GroupRequest::Join(g), 2, ip(5)), Ok(Some(g)));
        // A new constrained group takes its destination from the accepted connection.
        let h = t
            .admit(GroupRequest::Create(GroupKind::Constrained), 3, ip(7))
            .unwrap()
            .unwrap();
        assert_eq!(t.group(h).unwrap().destination, Some(ip(7)));
        assert_eq!(t.admit(GroupRequest::None, 4, ip(7)), Ok(None));
        let ghost = GroupId(0xffff_fff0);
        assert_eq!(
            t.admit(GroupRequest::Join(ghost), 5, ip(5)),
            Err(GroupError::UnknownGroup(ghost))
        );
    }

    #[test]
    fn errors_display() {
        let g = GroupId(0x101);
        assert_eq!(
            GroupError::UnknownGroup(g).to_string(),
            "group 0x101 does not exist"
        );
        assert!(GroupError::DestinationMismatch {
            group: g,
            expected: ip(1),
            got: ip(2)
        }
        .to_string()
        .contains("10.0.0.1"));
    }
}
