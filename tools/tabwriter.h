/* Aligned columns as kubectl lays them out: Go's text/tabwriter (the fork in kubectl's
 * printers, with RememberWidths), for `get` tables and `describe` sections.
 *
 * Text is written with '\t' ending each cell; a line's text after its last tab is not
 * aligned. Consecutive lines that have a cell in column k form a block, and column k of a
 * block is as wide as its widest cell plus the padding, and at least minwidth. Nothing is
 * written until tabwriter_flush; with remember_widths a column never narrows from one
 * flush to the next (rows printed one at a time by `get -w` stay aligned).
 */
#ifndef BRAMBLE_TOOLS_TABWRITER_H
#define BRAMBLE_TOOLS_TABWRITER_H

#include <stdbool.h>
#include <stddef.h>

#include "platform/buffer.h"

#define TABWRITER_MAX_COLUMNS 64

struct tabwriter {
	size_t minwidth;
	size_t padding;
	bool remember_widths;
	struct buffer text; /* written, not yet flushed */
	size_t remembered_count;
	size_t remembered[TABWRITER_MAX_COLUMNS];
};

/* kubectl get: minwidth 6, padding 3, widths remembered; kubectl describe: 0, 2, no. */
void tabwriter_init(struct tabwriter *w, size_t minwidth, size_t padding, bool remember_widths);
void tabwriter_write(struct tabwriter *w, const char *text);
void tabwriter_printf(struct tabwriter *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the aligned text written since the last flush to out. */
void tabwriter_flush(struct tabwriter *w, struct buffer *out);
void tabwriter_free(struct tabwriter *w);

#endif
