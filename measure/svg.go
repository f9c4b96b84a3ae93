//go:build unix

package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// width is the width of every picture, in pixels: about what GitHub shows
// an image at in a README, so text is drawn at its real size.
const width = 800

// margin is the space left and right of everything.
const margin = 20.0

// style is the one stylesheet every picture carries. The fonts are the
// system's own, as on GitHub's pages; nothing is fetched.
const style = `
text { font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; fill: #1f2328; font-size: 12px; }
.title { font-size: 18px; font-weight: 600; }
.sub { font-size: 12px; fill: #59636e; }
.head { font-size: 13px; font-weight: 600; }
.note { font-size: 11px; fill: #59636e; }
.tick { font-size: 11px; fill: #59636e; }
.value { font-size: 11px; fill: #1f2328; }
.skip { font-size: 11px; fill: #818b98; font-style: italic; }
.bad { font-size: 11px; fill: #cf222e; font-weight: 600; }
.grid { stroke: #e1e4e8; stroke-width: 1; }
.axis { stroke: #818b98; stroke-width: 1; }
.ref { stroke: #818b98; stroke-width: 1; stroke-dasharray: 3 3; }
`

// Colours (Okabe and Ito's, which colour-blind readers can tell apart), one
// per stage, so a stage has the same colour in every picture.
var stageColours = map[string]string{
	"01": "#999999",
	"02": "#E69F00",
	"03": "#56B4E9",
	"04": "#0072B2",
	"05": "#009E73",
	"06": "#CC79A7",
}

// failedColour marks requests that failed.
const failedColour = "#D55E00"

// colourOf gives the colour of a stage, from its folder's number.
func colourOf(stageDir string) string {
	if len(stageDir) >= 2 {
		if c, ok := stageColours[stageDir[:2]]; ok {
			return c
		}
	}
	return "#57606a"
}

// A canvas collects the elements of one SVG picture; svg wraps them in the
// document once the height is known.
type canvas struct {
	body bytes.Buffer
}

// rect draws a rectangle. class names it (tests count bars by class).
func (c *canvas) rect(class, fill string, x, y, w, h float64) {
	fmt.Fprintf(&c.body, `<rect class="%s" x="%s" y="%s" width="%s" height="%s" fill="%s"/>`+"\n",
		class, num(x), num(y), num(w), num(h), fill)
}

// line draws a line styled by class.
func (c *canvas) line(class string, x1, y1, x2, y2 float64) {
	fmt.Fprintf(&c.body, `<line class="%s" x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n",
		class, num(x1), num(y1), num(x2), num(y2))
}

// text writes s with its baseline at y. anchor is start, middle or end.
func (c *canvas) text(class, anchor string, x, y float64, s string) {
	fmt.Fprintf(&c.body, `<text class="%s" x="%s" y="%s" text-anchor="%s">`, class, num(x), num(y), anchor)
	xml.EscapeText(&c.body, []byte(s)) // a bytes.Buffer never fails
	c.body.WriteString("</text>\n")
}

// inkText is text in a colour of its own (a style attribute, as the
// stylesheet's fill would win over a fill attribute).
func (c *canvas) inkText(class, colour, anchor string, x, y float64, s string) {
	fmt.Fprintf(&c.body, `<text class="%s" style="fill:%s" x="%s" y="%s" text-anchor="%s">`, class, colour, num(x), num(y), anchor)
	xml.EscapeText(&c.body, []byte(s))
	c.body.WriteString("</text>\n")
}

// path draws an unfilled polyline through points, in colour; dashed or not.
func (c *canvas) path(class, colour string, dashed bool, points [][2]float64) {
	var d strings.Builder
	for i, p := range points {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&d, "%s%s %s ", cmd, num(p[0]), num(p[1]))
	}
	dash := ""
	if dashed {
		dash = ` stroke-dasharray="6 4"`
	}
	fmt.Fprintf(&c.body, `<path class="%s" d="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n",
		class, strings.TrimSpace(d.String()), colour, dash)
}

// marker draws a point of a curve: a circle, or a square when square is set
// (so two curves that coincide can still be told apart).
func (c *canvas) marker(class, colour string, square bool, x, y float64) {
	if square {
		fmt.Fprintf(&c.body, `<rect class="%s" x="%s" y="%s" width="8" height="8" fill="#ffffff" stroke="%s" stroke-width="2"/>`+"\n",
			class, num(x-4), num(y-4), colour)
		return
	}
	fmt.Fprintf(&c.body, `<circle class="%s" cx="%s" cy="%s" r="4" fill="%s"/>`+"\n", class, num(x), num(y), colour)
}

// header draws a picture's title and the lines of its subtitle, and returns
// the y where the picture's content can start.
func (c *canvas) header(title string, subtitle []string) float64 {
	c.text("title", "start", margin, 30, title)
	y := 30.0
	for _, line := range subtitle {
		y += 17
		c.text("sub", "start", margin, y, line)
	}
	return y + 18
}

// svg returns the whole document: a white background (readable in GitHub's
// dark mode too), the title for screen readers, then what was drawn.
func (c *canvas) svg(title string, height float64) []byte {
	var doc bytes.Buffer
	h := num(math.Ceil(height))
	fmt.Fprintf(&doc, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%s" viewBox="0 0 %d %s">`+"\n", width, h, width, h)
	doc.WriteString("<title>")
	xml.EscapeText(&doc, []byte(title))
	doc.WriteString("</title>\n<style>" + style + "</style>\n")
	fmt.Fprintf(&doc, `<rect x="0" y="0" width="%d" height="%s" fill="#ffffff"/>`+"\n", width, h)
	doc.Write(c.body.Bytes())
	doc.WriteString("</svg>\n")
	return doc.Bytes()
}

// num writes a coordinate with at most one decimal, the same way every time.
func num(v float64) string {
	v = math.Round(v*10) / 10
	if v == 0 {
		v = 0 // no "-0"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// textWidth guesses how wide s is at a font size: wide enough for layout
// decisions (does a label fit?), without measuring fonts.
func textWidth(s string, size float64) float64 {
	return 0.6 * size * float64(utf8.RuneCountInString(s))
}

// group writes n with thousands separators: 5,000.
func group(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + group(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
