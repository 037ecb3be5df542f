//! Multi-row statements in a few fixed sizes.
//!
//! sqlx keeps each statement it prepares in a cache per connection (100 of them, the least
//! recently used dropped first). A multi-row INSERT written for exactly the rows at hand is a
//! new statement for every batch size, so under a varying load the caches fill with large
//! near-copies that are seldom used again, and most batches pay for a fresh prepare. On
//! SQLite that memory is the process's own: measured with batches of 1 to 200 samples, 3,000
//! commits on one connection grew the heap by 40 MiB (3 MiB with one fixed size), and a pool
//! holds eight such caches. Cutting every batch into chunks of a few fixed sizes keeps the set
//! of statements small, bounded and always cached.

/// Splits `items` into chunks whose sizes come from a fixed ladder: `largest`, then a quarter
/// of the rung above, down to 1. Greedy, in order: the largest rung that fits, again and
/// again. A batch of n items takes about n / `largest` + 3 statements per rung below it.
pub(crate) fn shaped<T>(items: &[T], largest: usize) -> Shaped<'_, T> {
    Shaped { rest: items, largest: largest.max(1) }
}

/// The chunks of [`shaped`].
pub(crate) struct Shaped<'a, T> {
    rest: &'a [T],
    largest: usize,
}

impl<'a, T> Iterator for Shaped<'a, T> {
    type Item = &'a [T];

    fn next(&mut self) -> Option<&'a [T]> {
        if self.rest.is_empty() {
            return None;
        }
        let mut rung = self.largest;
        while rung > self.rest.len() {
            rung = (rung / 4).max(1);
        }
        let (chunk, rest) = self.rest.split_at(rung);
        self.rest = rest;
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn chunks_cover_every_item_once_in_order() {
        for n in 0..3000 {
            let items: Vec<usize> = (0..n).collect();
            let joined: Vec<usize> = shaped(&items, 1024).flatten().copied().collect();
            assert_eq!(joined, items, "n = {n}");
        }
    }

    #[test]
    fn any_batch_size_uses_only_the_ladder_sizes() {
        let mut sizes = BTreeSet::new();
        for n in 0..5000 {
            let items = vec![(); n];
            sizes.extend(shaped(&items, 1024).map(<[()]>::len));
        }
        assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![1, 4, 16, 64, 256, 1024]);
        let items = [(); 5000];
        let odd: BTreeSet<usize> =
            (1..=5000).flat_map(|n| shaped(&items[..n], 1000).map(<[()]>::len).collect::<Vec<_>>()).collect();
        assert_eq!(odd.into_iter().collect::<Vec<_>>(), vec![1, 3, 15, 62, 250, 1000]);
    }

    #[test]
    fn a_batch_takes_few_statements() {
        let items = vec![(); 1023];
        // 3 × 256 + 3 × 64 + 3 × 16 + 3 × 4 + 3 × 1: the worst case below one full chunk.
        assert_eq!(shaped(&items, 1024).count(), 15);
        assert_eq!(shaped(&[(); 4096], 1024).count(), 4);
        assert_eq!(shaped(&[(); 5], 0).count(), 5);
    }
}
