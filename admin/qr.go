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

// quiet is the blank margin around a QR code, in modules.
const quiet = 2

// terminalQR draws a QR code of text with half-block characters, two
// module rows per line, light modules as blocks so that it reads on a dark
// terminal the way `qrencode -t UTF8` does.
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
