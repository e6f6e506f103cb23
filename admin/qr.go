package admin

import (
	"fmt"
	"image/color"
	"image/png"
	"io"
	"strings"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
)

// quiet is the light margin around a QR code, in modules: the four that
// ISO/IEC 18004 asks for, so that no scanner runs it into the text or the
// window's edge beside it.
const quiet = 4

// terminalQR draws a QR code of text with half-block characters, two
// module rows per line, light modules as blocks: the glyphs take the
// terminal's text colour, the gaps its background. As it stands that reads
// on a dark terminal, the way `qrencode -t UTF8` does; [ColourQR] pins the
// two colours so that it reads on any. The drawing holds no escape
// sequence, so the reply that carries it can be made printable whole.
func terminalQR(text string) (string, error) {
	code, err := qr.Encode(text, qr.M, qr.Auto)
	if err != nil {
		return "", fmt.Errorf("make qr code: %w", err)
	}
	size := code.Bounds().Dx()
	light := func(x, y int) bool {
		if x < 0 || y < 0 || x >= size || y >= size {
			return true
		}
		return code.At(x, y) == color.White || isLight(code.At(x, y))
	}
	var b strings.Builder
	for y := -quiet; y < size+quiet; y += 2 {
		for x := -quiet; x < size+quiet; x++ {
			top, bottom := light(x, y), light(x, y+1)
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteString(" ")
			}
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

// QR colours for [ColourQR]: bright white text on a black background, so
// that the light modules are white and the dark ones black whatever the
// terminal's own colours; then the terminal's own again.
const (
	qrColours = "\x1b[97;40m"
	qrReset   = "\x1b[0m"
)

// ColourQR gives each line of a QR code drawn by the admin commands (a
// line of nothing but the drawing's half blocks, spaces and at least one
// block) explicit colours, so that it decodes on a light terminal as well
// as on a dark one. It is for the CLI, on output that has already been made
// printable (a [Reply]'s Output): the escape sequences it adds are its own
// constants, and any that came in the text are visible escapes by then.
func ColourQR(out string) string {
	lines := strings.SplitAfter(out, "\n")
	for i, line := range lines {
		body := strings.TrimSuffix(line, "\n")
		if isQRLine(body) {
			lines[i] = qrColours + body + qrReset + line[len(body):]
		}
	}
	return strings.Join(lines, "")
}

func isQRLine(s string) bool {
	block := false
	for _, r := range s {
		switch r {
		case '█', '▀', '▄':
			block = true
		case ' ':
		default:
			return false
		}
	}
	return block
}

func isLight(c color.Color) bool {
	r, g, bl, _ := c.RGBA()
	return r+g+bl > 3*0x7fff
}

// WritePNG writes a QR code of text as a PNG of about size pixels square.
func WritePNG(w io.Writer, text string, size int) error {
	code, err := qr.Encode(text, qr.M, qr.Auto)
	if err != nil {
		return fmt.Errorf("make qr code: %w", err)
	}
	scaled, err := barcode.Scale(code, size, size)
	if err != nil {
		return fmt.Errorf("scale qr code: %w", err)
	}
	return png.Encode(w, scaled)
}
