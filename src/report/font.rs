//! A 3×5 bitmap font (digits, capital letters — lower case is drawn as capitals — and common
//! signs) for the text of PNG plots. Unknown characters draw as `?`.

/// Glyph rows top to bottom, three columns each, `1` = ink.
const GLYPHS: &[(char, &str)] = &[
    ('0', "111101101101111"),
    ('1', "010110010010111"),
    ('2', "111001111100111"),
    ('3', "111001111001111"),
    ('4', "101101111001001"),
    ('5', "111100111001111"),
    ('6', "111100111101111"),
    ('7', "111001001010010"),
    ('8', "111101111101111"),
    ('9', "111101111001111"),
    ('A', "010101111101101"),
    ('B', "110101110101110"),
    ('C', "011100100100011"),
    ('D', "110101101101110"),
    ('E', "111100110100111"),
    ('F', "111100110100100"),
    ('G', "011100101101011"),
    ('H', "101101111101101"),
    ('I', "111010010010111"),
    ('J', "001001001101010"),
    ('K', "101101110101101"),
    ('L', "100100100100111"),
    ('M', "101111111101101"),
    ('N', "110101101101101"),
    ('O', "010101101101010"),
    ('P', "110101110100100"),
    ('Q', "010101101110011"),
    ('R', "110101110101101"),
    ('S', "011100010001110"),
    ('T', "111010010010010"),
    ('U', "101101101101111"),
    ('V', "101101101101010"),
    ('W', "101101111111101"),
    ('X', "101101010101101"),
    ('Y', "101101010010010"),
    ('Z', "111001010100111"),
    (' ', "000000000000000"),
    ('.', "000000000000010"),
    (',', "000000000010100"),
    (':', "000010000010000"),
    ('-', "000000111000000"),
    ('+', "000010111010000"),
    ('=', "000111000111000"),
    ('_', "000000000000111"),
    ('(', "001010010010001"),
    (')', "100010010010100"),
    ('/', "001001010100100"),
    ('%', "101001010100101"),
    ('|', "010010010010010"),
    ('?', "111001010000010"),
    ('@', "010101111100011"),
];

/// Width and height of a glyph in font pixels; characters advance by `GLYPH_W + 1`.
pub const GLYPH_W: usize = 3;
pub const GLYPH_H: usize = 5;

/// The 15 ink bits of `c` (row-major), `?` for unknown characters.
pub fn glyph(c: char) -> [bool; 15] {
    let c = c.to_ascii_uppercase();
    let s = GLYPHS
        .iter()
        .find(|(g, _)| *g == c)
        .or_else(|| GLYPHS.iter().find(|(g, _)| *g == '?'))
        .map(|(_, s)| *s)
        .unwrap_or("111111111111111");
    let mut bits = [false; 15];
    for (b, ch) in bits.iter_mut().zip(s.chars()) {
        *b = ch == '1';
    }
    bits
}

/// Width in image pixels of `text` drawn at `scale`.
pub fn text_width(text: &str, scale: usize) -> usize {
    let n = text.chars().count();
    if n == 0 {
        0
    } else {
        (n * (GLYPH_W + 1) - 1) * scale
    }
}

/// Calls `ink(x, y)` for every inked image pixel of `text` with its top-left corner at (x0, y0).
pub fn render(text: &str, x0: i64, y0: i64, scale: usize, mut ink: impl FnMut(i64, i64)) {
    let s = scale as i64;
    for (k, c) in text.chars().enumerate() {
        let bits = glyph(c);
        let cx = x0 + (k * (GLYPH_W + 1) * scale) as i64;
        for r in 0..GLYPH_H {
            for col in 0..GLYPH_W {
                if bits[r * GLYPH_W + col] {
                    for dy in 0..s {
                        for dx in 0..s {
                            ink(cx + col as i64 * s + dx, y0 + r as i64 * s + dy);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyphs_are_complete_and_distinct() {
        for (c, s) in GLYPHS {
            assert_eq!(s.len(), 15, "glyph {c}");
        }
        assert_ne!(glyph('0'), glyph('8'));
        assert_eq!(glyph('a'), glyph('A'));
        assert_eq!(glyph('~'), glyph('?'));
        let mut n = 0;
        render("1", 0, 0, 2, |_, _| n += 1);
        assert_eq!(n, 8 * 4); // 8 inked cells of "1", each 2×2
        assert_eq!(text_width("ab", 2), 14);
    }
}
