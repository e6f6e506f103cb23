package web

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
)

// qrPNG writes a QR code of text as a PNG, made here: no image service
// ever sees the secret.
func qrPNG(w io.Writer, text string) error {
	code, err := qr.Encode(text, qr.M, qr.Auto)
	if err != nil {
		return fmt.Errorf("make qr code: %w", err)
	}
	// Four pixels a module, with a quiet zone of four modules.
	n := code.Bounds().Dx()
	scaled, err := barcode.Scale(code, n*4, n*4)
	if err != nil {
		return fmt.Errorf("scale qr code: %w", err)
	}
	return png.Encode(w, quietZone{scaled, 16})
}

// quietZone is img with a white margin of m pixels, which QR readers need.
type quietZone struct {
	img image.Image
	m   int
}

func (q quietZone) ColorModel() color.Model { return color.GrayModel }

func (q quietZone) Bounds() image.Rectangle {
	b := q.img.Bounds()
	return image.Rect(0, 0, b.Dx()+2*q.m, b.Dy()+2*q.m)
}

func (q quietZone) At(x, y int) color.Color {
	b := q.img.Bounds()
	x, y = x-q.m+b.Min.X, y-q.m+b.Min.Y
	if !(image.Point{x, y}).In(b) {
		return color.White
	}
	return color.GrayModel.Convert(q.img.At(x, y))
}
