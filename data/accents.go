package data

import "unicode"

// The module does not depend on golang.org/x/text, so the canonical
// decomposition (NFD) BERT applies before dropping accents is implemented
// here for the Latin-1 Supplement (U+00C0–U+00FF) and Latin Extended-A
// (U+0100–U+017F) blocks, which cover the accented letters of the Western and
// Central European languages found in COCO and Visual Genome captions.
// Outside these blocks a precomposed letter keeps its accent (BERT would
// strip it); combining marks that are already separate (category Mn) are
// dropped everywhere, as in BERT. Letters with no canonical decomposition
// (æ, ð, ø, þ, ß, đ, ħ, ı, ĳ, ĸ, ŀ, ł, ŉ, ŋ, œ, ŧ, ſ) are kept, as NFD keeps them.

// latinBase holds, for U+00C0 + i, the base letter of the code point's
// canonical decomposition, or 0 when it has none. Only the base letter is
// needed because the combining mark is dropped right after.
var latinBase = [...]rune{
	// U+00C0 À Á Â Ã Ä Å Æ Ç È É Ê Ë Ì Í Î Ï
	'A', 'A', 'A', 'A', 'A', 'A', 0, 'C', 'E', 'E', 'E', 'E', 'I', 'I', 'I', 'I',
	// U+00D0 Ð Ñ Ò Ó Ô Õ Ö × Ø Ù Ú Û Ü Ý Þ ß
	0, 'N', 'O', 'O', 'O', 'O', 'O', 0, 0, 'U', 'U', 'U', 'U', 'Y', 0, 0,
	// U+00E0 à á â ã ä å æ ç è é ê ë ì í î ï
	'a', 'a', 'a', 'a', 'a', 'a', 0, 'c', 'e', 'e', 'e', 'e', 'i', 'i', 'i', 'i',
	// U+00F0 ð ñ ò ó ô õ ö ÷ ø ù ú û ü ý þ ÿ
	0, 'n', 'o', 'o', 'o', 'o', 'o', 0, 0, 'u', 'u', 'u', 'u', 'y', 0, 'y',
	// U+0100 Ā ā Ă ă Ą ą Ć ć Ĉ ĉ Ċ ċ Č č Ď ď
	'A', 'a', 'A', 'a', 'A', 'a', 'C', 'c', 'C', 'c', 'C', 'c', 'C', 'c', 'D', 'd',
	// U+0110 Đ đ Ē ē Ĕ ĕ Ė ė Ę ę Ě ě Ĝ ĝ Ğ ğ
	0, 0, 'E', 'e', 'E', 'e', 'E', 'e', 'E', 'e', 'E', 'e', 'G', 'g', 'G', 'g',
	// U+0120 Ġ ġ Ģ ģ Ĥ ĥ Ħ ħ Ĩ ĩ Ī ī Ĭ ĭ Į į
	'G', 'g', 'G', 'g', 'H', 'h', 0, 0, 'I', 'i', 'I', 'i', 'I', 'i', 'I', 'i',
	// U+0130 İ ı Ĳ ĳ Ĵ ĵ Ķ ķ ĸ Ĺ ĺ Ļ ļ Ľ ľ Ŀ
	'I', 0, 0, 0, 'J', 'j', 'K', 'k', 0, 'L', 'l', 'L', 'l', 'L', 'l', 0,
	// U+0140 ŀ Ł ł Ń ń Ņ ņ Ň ň ŉ Ŋ ŋ Ō ō Ŏ ŏ
	0, 0, 0, 'N', 'n', 'N', 'n', 'N', 'n', 0, 0, 0, 'O', 'o', 'O', 'o',
	// U+0150 Ő ő Œ œ Ŕ ŕ Ŗ ŗ Ř ř Ś ś Ŝ ŝ Ş ş
	'O', 'o', 0, 0, 'R', 'r', 'R', 'r', 'R', 'r', 'S', 's', 'S', 's', 'S', 's',
	// U+0160 Š š Ţ ţ Ť ť Ŧ ŧ Ũ ũ Ū ū Ŭ ŭ Ů ů
	'S', 's', 'T', 't', 'T', 't', 0, 0, 'U', 'u', 'U', 'u', 'U', 'u', 'U', 'u',
	// U+0170 Ű ű Ų ų Ŵ ŵ Ŷ ŷ Ÿ Ź ź Ż ż Ž ž ſ
	'U', 'u', 'U', 'u', 'W', 'w', 'Y', 'y', 'Y', 'Z', 'z', 'Z', 'z', 'Z', 'z', 0,
}

// stripAccent returns r without its accent and whether r is kept at all
// (false for a combining mark, which is dropped).
func stripAccent(r rune) (rune, bool) {
	if r >= 0xC0 && r < 0xC0+rune(len(latinBase)) {
		if b := latinBase[r-0xC0]; b != 0 {
			return b, true
		}
		return r, true
	}
	if r >= 0x300 && unicode.Is(unicode.Mn, r) {
		return 0, false
	}
	return r, true
}
