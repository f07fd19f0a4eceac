//! What a generated product of the benchmarks is made of, shared by the load tool (over HTTP) and
//! `catalog_scale` (on the store), so that both time products of the same shape.

const SENTENCES: [&str; 6] = [
    "Cut from a soft, tightly woven cotton that keeps its shape wash after wash.",
    "The fit sits close without clinging, with room through the shoulders and a clean line at the hem.",
    "Finished with horn-effect buttons, reinforced seams and a garment dye that fades gently over time.",
    "Made in a family-run mill that has worked with the same growers for three generations.",
    "Machine wash at 30 degrees, dry flat in the shade and iron on the reverse while still damp.",
    "Pairs with everything in the collection, from weekend shorts to the tailored winter trousers.",
];

/// The sizes every generated product comes in, each a variant with its own stock.
pub const SIZES: [&str; 4] = ["S", "M", "L", "XL"];

/// Product `n`'s description: 4-6 sentences, 300-600 characters.
pub fn description(n: usize) -> String {
    (0..4 + n % 3)
        .map(|i| SENTENCES[(n + i) % SENTENCES.len()])
        .collect::<Vec<_>>()
        .join(" ")
}
