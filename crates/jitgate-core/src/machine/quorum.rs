//! Whether a set of approvals meets every requirement of a flow, one person counting toward
//! at most one requirement.
//!
//! This is a bipartite matching between approvers and requirement slots (a requirement of
//! `n` approvals has `n` slots). Greedy assignment is wrong: if Ann is both a lead and in
//! security and approves first, counting her as a lead would block Bob (a lead only) from
//! completing "one lead AND one from security". Augmenting paths find the assignment.

use crate::model::flow::Requirement;

/// Returns whether `approvals` (for each distinct approver, the indexes of the requirements
/// they are eligible for) can be assigned so that every requirement gets its `min_approvals`.
pub fn quorum_met(requirements: &[Requirement], approvals: &[&[usize]]) -> bool {
    let slots: Vec<usize> = requirements
        .iter()
        .enumerate()
        .flat_map(|(i, r)| std::iter::repeat_n(i, r.min_approvals as usize))
        .collect();
    if approvals.len() < slots.len() {
        return false;
    }
    // slot -> approver currently assigned.
    let mut owner: Vec<Option<usize>> = vec![None; slots.len()];
    let mut matched = 0;
    for a in 0..approvals.len() {
        let mut seen = vec![false; slots.len()];
        if augment(a, approvals, &slots, &mut owner, &mut seen) {
            matched += 1;
        }
    }
    matched == slots.len()
}

fn augment(
    approver: usize,
    approvals: &[&[usize]],
    slots: &[usize],
    owner: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for s in 0..slots.len() {
        if seen[s] || !approvals[approver].contains(&slots[s]) {
            continue;
        }
        seen[s] = true;
        let free = match owner[s] {
            None => true,
            Some(other) => augment(other, approvals, slots, owner, seen),
        };
        if free {
            owner[s] = Some(approver);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::entity::EntityRef;

    fn reqs(ns: &[u32]) -> Vec<Requirement> {
        ns.iter()
            .enumerate()
            .map(|(i, n)| Requirement::new(EntityRef::new("Team", i.to_string()), *n))
            .collect()
    }

    #[test]
    fn one_person_in_both_sets_is_not_two_approvals() {
        let r = reqs(&[1, 1]);
        assert!(!quorum_met(&r, &[&[0, 1]]));
    }

    #[test]
    fn assignment_is_found_even_when_the_first_approver_fits_both() {
        let r = reqs(&[1, 1]);
        // Ann fits both, Bob only the first: Ann must count for the second.
        assert!(quorum_met(&r, &[&[0, 1], &[0]]));
        assert!(quorum_met(&r, &[&[0], &[0, 1]]));
    }

    #[test]
    fn two_from_one_set_need_two_people() {
        let r = reqs(&[2]);
        assert!(!quorum_met(&r, &[&[0]]));
        assert!(quorum_met(&r, &[&[0], &[0]]));
    }

    #[test]
    fn approvers_outside_every_set_do_not_count() {
        let r = reqs(&[1, 1]);
        assert!(!quorum_met(&r, &[&[0], &[], &[0]]));
    }

    #[test]
    fn no_requirements_is_met() {
        assert!(quorum_met(&[], &[]));
    }
}
