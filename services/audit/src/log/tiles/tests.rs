use super::*;
use tlog_tiles::{check_record, check_tree, prove_record, prove_tree, record_hash};

fn hex(h: Hash) -> String {
    h.0.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 6962's test leaves, as transparency-dev's test data has them.
fn rfc6962_leaves() -> Vec<Vec<u8>> {
    vec![
        vec![],
        vec![0x00],
        vec![0x10],
        vec![0x20, 0x21],
        vec![0x30, 0x31],
        vec![0x40, 0x41, 0x42, 0x43],
        (0x50..0x58).collect(),
        (0x60..0x70).collect(),
    ]
}

#[test]
fn roots_match_the_rfc_6962_test_vectors() {
    // Roots of the first 1–8 leaves (transparency-dev/merkle, testonly).
    let roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    let mut edge = Edge::default();
    for (leaf, root) in rfc6962_leaves().into_iter().zip(roots) {
        assert_eq!(hex(edge.append(&[leaf]).expect("append").root), root);
    }
    // All eight at once give the same tree.
    assert_eq!(hex(Edge::default().append(&rfc6962_leaves()).expect("append").root), roots[7]);
}

/// Every tile ever written, as the store keeps them: the latest data per tile.
#[derive(Default)]
struct Store(HashMap<(u8, u64), Vec<u8>>);

impl Store {
    fn reader(&self) -> Reader<'_> {
        Reader { tiles: &self.0, overlay: HashMap::new() }
    }
}

#[test]
fn appends_in_any_batches_give_one_tree_and_proofs_that_check() {
    let leaves: Vec<Vec<u8>> = (0..70_000u32).map(|i| format!("event {i}").into_bytes()).collect();
    // The root after each batch, by tree size.
    let (mut edge, mut store, mut roots) = (Edge::default(), Store::default(), std::collections::BTreeMap::new());
    let mut start = 0;
    for batch in [1usize, 2, 3, 250, 7, 256, 255, 1, 4_000, 65_000].iter().cycle() {
        let end = (start + batch).min(leaves.len());
        if start == end {
            break;
        }
        let appended = edge.append(&leaves[start..end]).expect("append");
        for (level, index, data) in appended.tiles {
            store.0.insert((level, index), data);
        }
        // An edge rebuilt from the store appends as the kept one does.
        let rebuilt: Vec<_> = edge_keys(end as u64).into_iter().map(|key| (key, store.0[&key].clone())).collect();
        assert_eq!(Edge::new(end as u64, rebuilt).expect("edge").tiles, edge.tiles);
        roots.insert(end as u64, appended.root);
        start = end;
    }
    let reader = store.reader();
    // Batches ended at 1, 3, 6, 256, 263, 519, 774, 775, 4,775, 69,775, …
    assert!(roots.len() > 10 && roots.contains_key(&256) && roots.contains_key(&70_000));
    for (&size, root) in &roots {
        assert_eq!(tree_hash(size, &reader).expect("tree hash"), *root, "size {size}");
    }
    let size = 70_000u64;
    for n in [0u64, 1, 255, 256, 65_535, 65_536, 69_999] {
        let asked = Asked::default();
        let _ = prove_record(size, n, &asked);
        let tiles = asked.tiles();
        let only: HashMap<_, _> = tiles.iter().map(|k| (*k, store.0[k].clone())).collect();
        let proof = prove_record(size, n, &Reader { tiles: &only, overlay: HashMap::new() }).expect("prove");
        check_record(&proof, size, roots[&size], n, record_hash(&leaves[n as usize])).expect("inclusion");
    }
    for (&old, old_root) in &roots {
        let proof = prove_tree(size, old, &reader).expect("prove");
        check_tree(&proof, size, roots[&size], old, *old_root).expect("consistency");
    }
    // A leaf that is not the one logged does not check.
    let proof = prove_record(size, 5, &reader).expect("prove");
    assert!(check_record(&proof, size, roots[&size], 5, record_hash(b"event 6")).is_err());
}

#[test]
fn paths_are_the_tlog_tiles_ones_and_only_those_parse() {
    let t = |level: Option<u8>, index: u64, width: u32| TileRef { level, index, width };
    for (tile, path) in [
        (t(Some(0), 0, 256), "tile/0/000"),
        (t(Some(0), 1_234_067, 256), "tile/0/x001/x234/067"),
        (t(Some(1), 5, 7), "tile/1/005.p/7"),
        (t(None, 1_000, 256), "tile/entries/x001/000"),
        (t(None, 42, 255), "tile/entries/042.p/255"),
    ] {
        assert_eq!(tile.path(), path);
        assert_eq!(TileRef::parse(path), Some(tile), "{path}");
    }
    for bad in [
        "tile/0/0",
        "tile/0/1234",
        "tile/00/000",
        "tile/0/001/002",
        "tile/0/x001",
        "tile/0/000.p/256",
        "tile/0/000.p/0",
        "tile/0/000.p/07",
        "tile/64/000",
        "tile/8/0/000",
        "tile/data/000",
        "tile/0/x000/001",
        "tile/0/000/",
        "tile/0/x99999999999999999/000",
    ] {
        assert_eq!(TileRef::parse(bad), None, "{bad}");
    }
}

#[test]
fn the_edge_is_the_growing_tile_of_each_level() {
    let at = edge_tiles;
    assert_eq!(at(0), vec![]);
    assert_eq!(at(1), vec![(0, 0, 1)]);
    assert_eq!(at(256), vec![(1, 0, 1)]);
    assert_eq!(at(257), vec![(0, 1, 1), (1, 0, 1)]);
    assert_eq!(at(65_536), vec![(2, 0, 1)]);
    assert_eq!(at(70_000), vec![(0, 273, 112), (1, 1, 17), (2, 0, 1)]);
}
