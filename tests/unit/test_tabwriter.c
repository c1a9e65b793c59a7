#include "tools/tabwriter.h"

#include "tests/unit/unit.h"

static char *format(struct tabwriter *w, const char *text)
{
	static struct buffer out;
	buffer_free(&out);
	tabwriter_write(w, text);
	tabwriter_flush(w, &out);
	return out.data ? out.data : "";
}

TEST(get_tables_pad_by_three_with_a_minimum_of_six)
{
	struct tabwriter w;
	tabwriter_init(&w, 6, 3, true);
	CHECK_STR(format(&w, "NAME\tREADY\tAGE\nweb\t0/2\t5s\n"), "NAME   READY   AGE\n"
	                                                          "web    0/2     5s\n");
	tabwriter_free(&w);
	tabwriter_init(&w, 6, 3, false);
	CHECK_STR(format(&w, "ID\tX\n1\tY\n"), "ID    X\n1     Y\n");
	tabwriter_free(&w);
}

TEST(remembered_widths_keep_watched_rows_aligned)
{
	struct tabwriter w;
	tabwriter_init(&w, 6, 3, true);
	CHECK_STR(format(&w, "NAME\tAGE\nab\t1s\n"), "NAME   AGE\nab     1s\n");
	CHECK_STR(format(&w, "a\t2s\n"), "a      2s\n");
	CHECK_STR(format(&w, "abcdefgh\t3s\n"), "abcdefgh   3s\n");
	CHECK_STR(format(&w, "a\t4s\n"), "a          4s\n"); /* never narrower again */
	tabwriter_free(&w);
}

TEST(describe_blocks_end_at_a_line_without_a_tab)
{
	struct tabwriter w;
	tabwriter_init(&w, 0, 2, false);
	CHECK_STR(format(&w, "Name:\tnginx\nNamespace:\tdefault\nIPs:\n  IP:\t10.0.0.1\nLabels:\tapp=web\n"),
	          "Name:       nginx\n"
	          "Namespace:  default\n"
	          "IPs:\n"
	          "  IP:    10.0.0.1\n" /* one block with the next line, as in kubectl describe pod */
	          "Labels:  app=web\n");
	tabwriter_free(&w);
}

TEST(nested_columns_are_aligned_per_block)
{
	struct tabwriter w;
	tabwriter_init(&w, 0, 2, false);
	/* The events table under "Events:" is one block of five columns. */
	CHECK_STR(format(&w, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n  ----\t------\t----\t----\t-------\n"
	                     "  Normal\tScheduled\t5s\tdefault-scheduler\tassigned\n"),
	          "Events:\n"
	          "  Type    Reason     Age   From               Message\n"
	          "  ----    ------     ----  ----               -------\n"
	          "  Normal  Scheduled  5s    default-scheduler  assigned\n");
	tabwriter_free(&w);
}

TEST(characters_not_bytes_and_a_last_line_without_newline)
{
	struct tabwriter w;
	tabwriter_init(&w, 0, 1, false);
	CHECK_STR(format(&w, "é\tx\nab\ty"), "é  x\nab y\n");
	tabwriter_free(&w);
}
