//! The simulated cars' world: hand-placed places and road waypoints of Zhoushan, the links
//! between them, the charging sites, and the road graph with its shortest paths.
//!
//! Waypoints follow the main roads of Zhoushan Island (the G329 along the south coast from
//! Dinghai through Lincheng to Shenjiamen, the north road through Baiquan and Ganlan, the
//! expressway from Dinghai to the Cengang bridge), the chain of cross-sea bridges over
//! Lidiao, Fuchi and Cezi to Jintang, and the Zhujiajian bridge to the airport. They were
//! chosen so that every straight road segment stays on land (checked against the GSHHG
//! full-resolution coastline when the table was made); bridges cross water as the real ones
//! do. The one leg over open water is the ro-ro ferry from Sanjiang pier to Gaoting on
//! Daishan, whose waypoints lie in the channel west of Changbai island. Beyond Jintang, the
//! Jintang bridge lands at Zhenhai on the mainland, and a road runs on through Ningbo to Yuyao,
//! outside the service area: no order goes there, only a car taken for private use (placed by
//! hand on the mainland's plain, not checked against the coastline).

use std::sync::OnceLock;

use super::geo::LatLon;

/// What a point of the graph is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceKind {
    /// A place cars drive to and park at.
    Destination,
    /// A waypoint on a road (junction, bend, bridge end).
    Junction,
    /// A ferry pier.
    Pier,
    /// A waypoint of the ferry route, on water.
    Waterway,
    /// On the mainland, off the demo's map: only a car taken for private use goes there.
    Mainland,
}

/// A named point of the graph.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Place {
    pub id: &'static str,
    pub name_zh: &'static str,
    pub name_pinyin: &'static str,
    pub lat: f64,
    pub lon: f64,
    pub kind: PlaceKind,
    /// How often cars pick this place as a destination, relative to others (0 = never).
    pub popularity: u32,
}

impl Place {
    pub fn pos(&self) -> LatLon {
        LatLon::new(self.lat, self.lon)
    }
}

/// The kind of a link, which sets how fast cars move along it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Town streets: 20–50 km/h with traffic lights.
    Urban,
    /// Expressway and national road between towns: 60–80 km/h.
    Highway,
    /// A cross-sea bridge: 60–80 km/h.
    Bridge,
    /// The ro-ro ferry: the car rides, switched off, at ferry speed.
    Ferry,
}

impl Link {
    /// Cruising speed range in km/h.
    pub fn speed_range_kmh(self) -> (f64, f64) {
        match self {
            Link::Urban => (20.0, 50.0),
            Link::Highway | Link::Bridge => (60.0, 80.0),
            Link::Ferry => (16.0, 22.0),
        }
    }

    /// Speed used to plan routes, in km/h.
    fn planning_speed_kmh(self) -> f64 {
        let (lo, hi) = self.speed_range_kmh();
        (lo + hi) / 2.0
    }
}

/// A road (or ferry) link between two places, by id; links run both ways.
#[derive(Debug, Clone, Copy)]
pub struct Road {
    pub from: &'static str,
    pub to: &'static str,
    pub link: Link,
}

/// A charging site at a place of the graph.
#[derive(Debug, Clone, Copy)]
pub struct ChargerSite {
    pub id: &'static str,
    pub name_zh: &'static str,
    pub place: &'static str,
    pub power_kw: f64,
}

/// A latitude/longitude box.
#[derive(Debug, Clone, Copy)]
pub struct Bbox {
    pub min_lat: f64,
    pub max_lat: f64,
    pub min_lon: f64,
    pub max_lon: f64,
}

impl Bbox {
    pub fn contains(&self, p: LatLon) -> bool {
        (self.min_lat..=self.max_lat).contains(&p.lat) && (self.min_lon..=self.max_lon).contains(&p.lon)
    }
}

/// Zhoushan city from Jintang to Zhujiajian and up to Daishan: every simulated position lies
/// inside, but for a car taken to the mainland for private use.
pub const ZHOUSHAN_BBOX: Bbox = Bbox { min_lat: 29.85, max_lat: 30.30, min_lon: 121.85, max_lon: 122.45 };

/// Minutes spent waiting at the pier before the ferry leaves, at most.
pub const FERRY_BOARDING_MAX_MIN: f64 = 20.0;

const fn place(
    id: &'static str,
    name_zh: &'static str,
    name_pinyin: &'static str,
    lon: f64,
    lat: f64,
    kind: PlaceKind,
    popularity: u32,
) -> Place {
    Place { id, name_zh, name_pinyin, lat, lon, kind, popularity }
}

use PlaceKind::{Destination as D, Junction as J, Mainland as M, Pier as P, Waterway as W};

/// Every point of the graph (WGS-84; longitude first in each row, as on a map).
pub static PLACES: &[Place] = &[
    // Dinghai and the west.
    place("dinghai", "定海老城", "Dinghai Laocheng", 122.106, 30.019, D, 9),
    place("dinghai_n", "定海城北", "Dinghai Chengbei", 122.110, 30.040, J, 0),
    place("dinghai_w", "定海城西", "Dinghai Chengxi", 122.075, 30.027, J, 0),
    place("dinghai_e", "定海城东", "Dinghai Chengdong", 122.140, 30.008, J, 0),
    place("yadanshan", "鸭蛋山码头", "Yadanshan Matou", 122.045, 30.008, D, 2),
    place("shuangqiao", "双桥", "Shuangqiao", 122.040, 30.040, J, 0),
    place("cengang", "岑港", "Cengang", 122.005, 30.062, D, 2),
    place("xiaosha", "小沙", "Xiaosha", 122.035, 30.100, D, 1),
    place("maao", "马岙", "Ma'ao", 122.080, 30.088, D, 2),
    // The cross-sea bridges to Jintang.
    place("cengang_br", "岑港大桥", "Cengang Daqiao", 121.991, 30.068, J, 0),
    place("lidiao", "里钓岛", "Lidiao Dao", 121.979, 30.081, J, 0),
    place("fuchi", "富翅岛", "Fuchi Dao", 121.972, 30.097, J, 0),
    place("cezi_e", "册子岛东", "Cezi Dao Dong", 121.948, 30.095, J, 0),
    place("cezi_sw", "册子岛西南", "Cezi Dao Xinan", 121.930, 30.076, J, 0),
    place("jintang_ne", "金塘岛东北", "Jintang Dao Dongbei", 121.888, 30.066, J, 0),
    place("jintang", "金塘", "Jintang", 121.895, 30.025, D, 2),
    // Lincheng new district.
    place("lincheng_w", "临城西", "Lincheng Xi", 122.172, 30.000, J, 0),
    place("lincheng", "临城新区", "Lincheng Xinqu", 122.200, 29.991, D, 8),
    place("gov", "舟山市政府", "Zhoushan Shi Zhengfu", 122.207, 29.986, D, 10),
    place("hospital", "舟山医院", "Zhoushan Yiyuan", 122.214, 29.994, D, 7),
    place("lincheng_e", "临城东", "Lincheng Dong", 122.230, 29.984, J, 0),
    place("lincheng_n", "临城北", "Lincheng Bei", 122.185, 30.030, J, 0),
    // The north road.
    place("baiquan", "白泉", "Baiquan", 122.145, 30.055, D, 3),
    place("ganlan", "干览", "Ganlan", 122.222, 30.058, D, 2),
    place("zhanmao", "展茅", "Zhanmao", 122.268, 30.030, D, 2),
    // Shenjiamen and Putuo.
    place("goushan", "勾山", "Goushan", 122.255, 29.972, J, 0),
    place("shenjiamen_w", "沈家门西", "Shenjiamen Xi", 122.280, 29.960, J, 0),
    place("shenjiamen_n", "沈家门北", "Shenjiamen Bei", 122.287, 29.985, J, 0),
    place("shenjiamen", "沈家门渔港", "Shenjiamen Yugang", 122.297, 29.952, D, 8),
    place("putuo_gov", "普陀区政府", "Putuo Qu Zhengfu", 122.302, 29.962, D, 7),
    // Zhujiajian, over the bridge.
    place("zjj_br_w", "朱家尖大桥西", "Zhujiajian Daqiao Xi", 122.313, 29.951, J, 0),
    place("zjj_br_e", "朱家尖大桥东", "Zhujiajian Daqiao Dong", 122.332, 29.940, J, 0),
    place("airport", "普陀山机场", "Putuoshan Jichang", 122.360, 29.930, D, 4),
    place("wugongzhi", "蜈蚣峙码头", "Wugongzhi Matou", 122.383, 29.940, D, 2),
    place("zjj_mid", "朱家尖中部", "Zhujiajian Zhongbu", 122.375, 29.915, J, 0),
    place("nansha", "朱家尖南沙", "Zhujiajian Nansha", 122.390, 29.900, D, 2),
    // The ferry to Daishan.
    place("sanjiang", "三江码头", "Sanjiang Matou", 122.129, 30.126, P, 0),
    place("ferry_1", "三江航道", "Sanjiang Hangdao", 122.139, 30.148, W, 0),
    place("ferry_2", "长白西水道", "Changbai Xi Shuidao", 122.137, 30.203, W, 0),
    place("ferry_3", "高亭航道", "Gaoting Hangdao", 122.170, 30.232, W, 0),
    place("gaoting_pier", "高亭码头", "Gaoting Matou", 122.197, 30.246, P, 0),
    place("gaoting", "岱山高亭", "Daishan Gaoting", 122.200, 30.258, D, 2),
    // Over the Jintang bridge to the mainland, and on to Yuyao (west of the service area).
    place("zhenhai", "镇海", "Zhenhai", 121.713, 29.960, M, 0),
    place("ningbo", "宁波市区", "Ningbo Shiqu", 121.550, 29.874, M, 0),
    place(AWAY, "余姚", "Yuyao", 121.154, 30.037, M, 0),
];

/// The place outside the service area where the demo's out-of-area private trips go.
pub const AWAY: &str = "yuyao";

const fn road(from: &'static str, to: &'static str, link: Link) -> Road {
    Road { from, to, link }
}

use Link::{Bridge as B, Ferry as F, Highway as H, Urban as U};

/// The links of the graph, both ways.
pub static ROADS: &[Road] = &[
    road("dinghai", "dinghai_n", U),
    road("dinghai", "dinghai_w", U),
    road("dinghai", "dinghai_e", U),
    road("dinghai_w", "yadanshan", U),
    road("yadanshan", "shuangqiao", U),
    road("dinghai_w", "shuangqiao", H),
    road("shuangqiao", "cengang", H),
    road("cengang", "cengang_br", H),
    road("cengang_br", "lidiao", B),
    road("lidiao", "fuchi", B),
    road("fuchi", "cezi_e", B),
    road("cezi_e", "cezi_sw", H),
    road("cezi_sw", "jintang_ne", B),
    road("jintang_ne", "jintang", U),
    road("cengang", "xiaosha", U),
    road("xiaosha", "maao", U),
    road("dinghai_n", "maao", H),
    road("maao", "sanjiang", U),
    road("dinghai_e", "lincheng_w", H),
    road("lincheng_w", "lincheng", U),
    road("lincheng", "gov", U),
    road("lincheng", "hospital", U),
    road("gov", "lincheng_e", U),
    road("hospital", "lincheng_e", U),
    road("lincheng_e", "goushan", H),
    road("goushan", "shenjiamen_w", H),
    road("shenjiamen_w", "shenjiamen", U),
    road("shenjiamen", "putuo_gov", U),
    road("shenjiamen", "zjj_br_w", U),
    road("putuo_gov", "zjj_br_w", U),
    road("zjj_br_w", "zjj_br_e", B),
    road("zjj_br_e", "airport", H),
    road("airport", "wugongzhi", U),
    road("airport", "zjj_mid", U),
    road("zjj_mid", "nansha", U),
    road("dinghai_n", "baiquan", H),
    road("baiquan", "lincheng_n", H),
    road("lincheng_n", "lincheng_w", H),
    road("baiquan", "sanjiang", H),
    road("baiquan", "ganlan", H),
    road("ganlan", "zhanmao", H),
    road("zhanmao", "shenjiamen_n", H),
    road("shenjiamen_n", "putuo_gov", U),
    road("shenjiamen_n", "goushan", U),
    road("sanjiang", "ferry_1", F),
    road("ferry_1", "ferry_2", F),
    road("ferry_2", "ferry_3", F),
    road("ferry_3", "gaoting_pier", F),
    road("gaoting_pier", "gaoting", U),
    road("jintang", "zhenhai", B),
    road("zhenhai", "ningbo", H),
    road("ningbo", AWAY, H),
];

/// Public charging sites the cars use, each at a place of the graph.
pub static CHARGERS: &[ChargerSite] = &[
    ChargerSite { id: "cs01", name_zh: "定海老城国网快充站", place: "dinghai", power_kw: 60.0 },
    ChargerSite { id: "cs02", name_zh: "临城新区市民中心充电站", place: "lincheng", power_kw: 120.0 },
    ChargerSite { id: "cs03", name_zh: "舟山医院停车场充电桩", place: "hospital", power_kw: 7.0 },
    ChargerSite { id: "cs04", name_zh: "沈家门渔港公交场站充电站", place: "shenjiamen", power_kw: 60.0 },
    ChargerSite { id: "cs05", name_zh: "普陀区行政中心充电站", place: "putuo_gov", power_kw: 30.0 },
    ChargerSite { id: "cs06", name_zh: "普陀山机场停车场充电站", place: "airport", power_kw: 120.0 },
    ChargerSite { id: "cs07", name_zh: "白泉镇政府充电站", place: "baiquan", power_kw: 40.0 },
    ChargerSite { id: "cs08", name_zh: "岱山高亭客运码头充电站", place: "gaoting", power_kw: 60.0 },
];

/// One link of the graph with its endpoints as place indices.
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    pub a: usize,
    pub b: usize,
    pub link: Link,
    pub length_m: f64,
}

/// The graph of [`PLACES`] and [`ROADS`] with all shortest paths (by planned travel time)
/// computed once.
#[derive(Debug)]
pub struct RoadGraph {
    edges: Vec<Edge>,
    /// `edge_at[a][b]`: the edge joining places `a` and `b`, if any.
    edge_at: Vec<Vec<Option<usize>>>,
    /// `next[a][b]`: the place after `a` on the quickest path to `b`.
    next: Vec<Vec<Option<usize>>>,
    /// `cost_s[a][b]`: planned travel time from `a` to `b`, in seconds.
    cost_s: Vec<Vec<f64>>,
    destinations: Vec<usize>,
    chargers: Vec<usize>,
}

/// The graph, built on first use.
pub fn graph() -> &'static RoadGraph {
    static GRAPH: OnceLock<RoadGraph> = OnceLock::new();
    GRAPH.get_or_init(RoadGraph::build)
}

/// Index of the place with this id. Panics on an unknown id: ids come from the tables
/// above, which the tests check.
pub fn place_index(id: &str) -> usize {
    PLACES.iter().position(|p| p.id == id).unwrap_or_else(|| panic!("unknown place id {id:?}"))
}

impl RoadGraph {
    fn build() -> Self {
        let n = PLACES.len();
        let mut edges = Vec::with_capacity(ROADS.len());
        let mut edge_at = vec![vec![None; n]; n];
        let mut cost_s = vec![vec![f64::INFINITY; n]; n];
        let mut next = vec![vec![None; n]; n];
        for (i, row) in cost_s.iter_mut().enumerate() {
            row[i] = 0.0;
            next[i][i] = Some(i);
        }
        for r in ROADS {
            let (a, b) = (place_index(r.from), place_index(r.to));
            let length_m = PLACES[a].pos().distance_m(PLACES[b].pos());
            let mut secs = length_m / (r.link.planning_speed_kmh() / 3.6);
            if r.link == Link::Ferry {
                // Half the usual wait at each end of the crossing.
                secs += FERRY_BOARDING_MAX_MIN * 60.0 / 4.0;
            }
            edge_at[a][b] = Some(edges.len());
            edge_at[b][a] = Some(edges.len());
            edges.push(Edge { a, b, link: r.link, length_m });
            cost_s[a][b] = secs;
            cost_s[b][a] = secs;
            next[a][b] = Some(b);
            next[b][a] = Some(a);
        }
        // Floyd–Warshall: a few dozen places, so all pairs at once is cheapest overall.
        for k in 0..n {
            for i in 0..n {
                for j in 0..n {
                    let via = cost_s[i][k] + cost_s[k][j];
                    if via < cost_s[i][j] {
                        cost_s[i][j] = via;
                        next[i][j] = next[i][k];
                    }
                }
            }
        }
        let destinations = (0..n).filter(|&i| PLACES[i].kind == PlaceKind::Destination).collect();
        let chargers = CHARGERS.iter().map(|c| place_index(c.place)).collect();
        Self { edges, edge_at, next, cost_s, destinations, chargers }
    }

    /// The places from `from` to `to` along the quickest path, both ends included.
    pub fn path(&self, from: usize, to: usize) -> Vec<usize> {
        let mut path = vec![from];
        let mut at = from;
        while at != to {
            match self.next[at][to] {
                Some(n) => {
                    path.push(n);
                    at = n;
                }
                None => return vec![from],
            }
        }
        path
    }

    /// Planned travel time between two places, in seconds.
    pub fn travel_s(&self, from: usize, to: usize) -> f64 {
        self.cost_s[from][to]
    }

    /// The edge between two adjacent places.
    pub fn edge(&self, a: usize, b: usize) -> Option<&Edge> {
        self.edge_at[a][b].map(|i| &self.edges[i])
    }

    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    /// Places cars drive to (index into [`PLACES`]).
    pub fn destinations(&self) -> &[usize] {
        &self.destinations
    }

    /// The place a car can stop at nearest `p`: a destination or a road's waypoint (on the
    /// islands or the mainland), never a pier or a point on the water.
    pub fn nearest_stop(&self, p: LatLon) -> usize {
        (0..PLACES.len())
            .filter(|&i| matches!(PLACES[i].kind, PlaceKind::Destination | PlaceKind::Junction | PlaceKind::Mainland))
            .min_by(|&a, &b| p.distance_m(PLACES[a].pos()).total_cmp(&p.distance_m(PLACES[b].pos())))
            .unwrap_or(0)
    }

    /// The place of each entry of [`CHARGERS`].
    pub fn charger_places(&self) -> &[usize] {
        &self.chargers
    }

    /// Driving distance along a path, in km, leaving out ferry legs (the car does not move
    /// under its own power there).
    pub fn driven_km(&self, path: &[usize]) -> f64 {
        path.windows(2)
            .filter_map(|w| self.edge(w[0], w[1]))
            .filter(|e| e.link != Link::Ferry)
            .map(|e| e.length_m / 1000.0)
            .sum()
    }

    /// Distance in metres from `p` to the nearest road or bridge (ferry legs left out).
    pub fn distance_to_roads_m(&self, p: LatLon) -> f64 {
        self.distance_to(p, |l| l != Link::Ferry)
    }

    /// Distance in metres from `p` to the ferry route.
    pub fn distance_to_ferry_m(&self, p: LatLon) -> f64 {
        self.distance_to(p, |l| l == Link::Ferry)
    }

    fn distance_to(&self, p: LatLon, keep: impl Fn(Link) -> bool) -> f64 {
        self.edges
            .iter()
            .filter(|e| keep(e.link))
            .map(|e| p.distance_to_segment_m(PLACES[e.a].pos(), PLACES[e.b].pos()))
            .fold(f64::INFINITY, f64::min)
    }
}

/// The place a car belongs to, from its VIN: stable across runs and between the demo
/// history and the live simulator.
pub fn home_place(vin: &fleet_domain::Vin) -> usize {
    let g = graph();
    // FNV-1a: a fixed hash (std's hasher may change between releases).
    let h =
        vin.as_str().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let total: u64 = g.destinations().iter().map(|&d| u64::from(PLACES[d].popularity)).sum();
    let mut pick = h % total.max(1);
    for &d in g.destinations() {
        let w = u64::from(PLACES[d].popularity);
        if pick < w {
            return d;
        }
        pick -= w;
    }
    g.destinations()[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_ids_are_unique_and_every_road_joins_known_places() {
        for (i, p) in PLACES.iter().enumerate() {
            assert_eq!(place_index(p.id), i, "duplicate id {}", p.id);
            assert_eq!(ZHOUSHAN_BBOX.contains(p.pos()), p.kind != PlaceKind::Mainland, "{} in Zhoushan or not", p.id);
            assert_eq!(p.popularity > 0, p.kind == PlaceKind::Destination, "{}", p.id);
        }
        assert_eq!(graph().edges().len(), ROADS.len());
        for c in CHARGERS {
            assert_eq!(PLACES[place_index(c.place)].kind, PlaceKind::Destination, "{}", c.id);
        }
    }

    #[test]
    fn every_place_reaches_every_other() {
        let g = graph();
        for (a, pa) in PLACES.iter().enumerate() {
            for (b, pb) in PLACES.iter().enumerate() {
                let path = g.path(a, b);
                assert_eq!((path[0], *path.last().unwrap()), (a, b), "{} -> {}", pa.id, pb.id);
                assert!(path.windows(2).all(|w| g.edge(w[0], w[1]).is_some()));
            }
        }
    }

    #[test]
    fn daishan_is_reached_only_by_ferry_and_jintang_over_the_bridges() {
        let g = graph();
        let path = g.path(place_index("gov"), place_index("gaoting"));
        let links: Vec<Link> = path.windows(2).map(|w| g.edge(w[0], w[1]).unwrap().link).collect();
        assert_eq!(links.iter().filter(|l| **l == Link::Ferry).count(), 4);
        assert!(path.contains(&place_index("sanjiang")));
        let path = g.path(place_index("dinghai"), place_index("jintang"));
        let bridges = path.windows(2).filter(|w| g.edge(w[0], w[1]).unwrap().link == Link::Bridge).count();
        assert_eq!(bridges, 4);
    }

    #[test]
    fn dinghai_to_shenjiamen_runs_along_the_south_coast() {
        let g = graph();
        let path = g.path(place_index("dinghai"), place_index("shenjiamen"));
        assert!(path.contains(&place_index("lincheng_w")), "{path:?}");
        let km = g.driven_km(&path);
        assert!((20.0..30.0).contains(&km), "{km}");
    }
}
