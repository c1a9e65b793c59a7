/* Go's text/tabwriter, as kubectl uses it (see tools/tabwriter.h).
 *
 * State: the text written since the last flush (flush splits it into lines and cells,
 * formats, and forgets it) and, with remember_widths, the widest width seen per column.
 * format() is Go's: for the column after the ones already fixed, find each run of
 * consecutive lines that have a cell there, fix that column's width for the run, recurse
 * for the columns to its right; lines outside every run are written with the widths fixed
 * so far.
 */
#include "tools/tabwriter.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "platform/memory.h"

struct cell {
	const char *text;
	size_t size;  /* bytes */
	size_t width; /* characters (UTF-8 code points) */
};

struct line {
	struct cell *cells;
	size_t count;
};

struct layout {
	struct tabwriter *w;
	struct line *lines;
	size_t line_count;
	size_t widths[TABWRITER_MAX_COLUMNS];
	size_t width_count;
	struct buffer *out;
};

void tabwriter_init(struct tabwriter *w, size_t minwidth, size_t padding, bool remember_widths)
{
	memset(w, 0, sizeof(*w));
	w->minwidth = minwidth;
	w->padding = padding;
	w->remember_widths = remember_widths;
}

void tabwriter_write(struct tabwriter *w, const char *text)
{
	buffer_append_string(&w->text, text);
}

void tabwriter_printf(struct tabwriter *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = xvasprintf(fmt, ap);
	va_end(ap);
	buffer_append_string(&w->text, text);
	free(text);
}

static size_t characters(const char *s, size_t size)
{
	size_t n = 0;
	for (size_t i = 0; i < size; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

static void padding(struct buffer *out, size_t text_width, size_t cell_width)
{
	for (size_t i = text_width; i < cell_width; i++)
		buffer_append(out, " ", 1);
}

static void write_lines(struct layout *l, size_t line0, size_t line1)
{
	for (size_t i = line0; i < line1; i++) {
		const struct line *line = &l->lines[i];
		for (size_t j = 0; j < line->count; j++) {
			const struct cell *c = &line->cells[j];
			buffer_append(l->out, c->text, c->size);
			if (j < l->width_count)
				padding(l->out, c->width, l->widths[j]);
		}
		buffer_append(l->out, "\n", 1);
	}
}

static void format(struct layout *l, size_t line0, size_t line1)
{
	size_t column = l->width_count;
	if (column >= TABWRITER_MAX_COLUMNS) {
		write_lines(l, line0, line1);
		return;
	}
	for (size_t this = line0; this < line1; this ++) {
		if (column + 1 >= l->lines[this].count)
			continue;
		/* A cell in this column: the lines before it are done, a block starts here. */
		write_lines(l, line0, this);
		line0 = this;
		size_t width = l->w->minwidth;
		for (; this < line1; this ++) {
			const struct line *line = &l->lines[this];
			if (column + 1 >= line->count)
				break;
			size_t w = line->cells[column].width + l->w->padding;
			if (w > width)
				width = w;
		}
		struct tabwriter *tw = l->w;
		if (tw->remember_widths) {
			if (tw->remembered_count <= column) {
				for (size_t k = tw->remembered_count; k < column; k++)
					tw->remembered[k] = l->widths[k];
				tw->remembered[column] = width;
				tw->remembered_count = column + 1;
			} else if (tw->remembered[column] > width) {
				width = tw->remembered[column];
			} else {
				tw->remembered[column] = width;
			}
		}
		l->widths[l->width_count++] = width;
		format(l, line0, this);
		l->width_count--;
		line0 = this; /* the line that ended the block has no cell here: skipping it is right */
	}
	write_lines(l, line0, line1);
}

void tabwriter_flush(struct tabwriter *w, struct buffer *out)
{
	if (!w->text.length)
		return;
	const char *text = w->text.data, *end = text + w->text.length;
	struct layout l = { .w = w, .out = out };
	while (text < end) {
		const char *newline = memchr(text, '\n', (size_t)(end - text));
		const char *line_end = newline ? newline : end;
		l.lines = xrealloc(l.lines, (l.line_count + 1) * sizeof(*l.lines));
		struct line *line = &l.lines[l.line_count++];
		memset(line, 0, sizeof(*line));
		const char *p = text;
		for (;;) {
			const char *tab = memchr(p, '\t', (size_t)(line_end - p));
			const char *cell_end = tab ? tab : line_end;
			line->cells = xrealloc(line->cells, (line->count + 1) * sizeof(*line->cells));
			line->cells[line->count++] =
			        (struct cell){ p, (size_t)(cell_end - p), characters(p, (size_t)(cell_end - p)) };
			if (!tab)
				break;
			p = tab + 1;
		}
		text = newline ? newline + 1 : end;
	}
	format(&l, 0, l.line_count);
	for (size_t i = 0; i < l.line_count; i++)
		free(l.lines[i].cells);
	free(l.lines);
	buffer_reset(&w->text);
}

void tabwriter_free(struct tabwriter *w)
{
	buffer_free(&w->text);
}
