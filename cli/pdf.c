/* pdf.c - a minimal PDF 1.4 writer for text pages: lines of monospaced text (Courier,
 * one of the 14 fonts every viewer has, so nothing is embedded), A4, as many pages as
 * the lines need. Enough for an invoice an operator can send; written by hand because
 * it is ~100 lines and a library would be a dependency for one page of text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "strbuf.h"

#define LINES_PER_PAGE 84   /* 7-point Courier, 9-point leading: ~125 characters a line */
#define PAGE_W 595
#define PAGE_H 842

/* Text as a PDF string literal: backslash, parentheses escaped; non-ASCII as '?'. */
static void pdf_string(strbuf_t *b, const char *s)
{
    strbuf_putc(b, '(');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '(' || c == ')' || c == '\\')
            strbuf_putc(b, '\\');
        strbuf_putc(b, c >= 32 && c < 127 ? (char)c : '?');
    }
    strbuf_putc(b, ')');
}

int pdf_write_text(const char *path, const char *const *lines, size_t n)
{
    size_t pages = n ? (n + LINES_PER_PAGE - 1) / LINES_PER_PAGE : 1;
    /* objects: 1 catalog, 2 pages, 3 font, then per page: page, contents */
    size_t nobj = 3 + 2 * pages;
    long *off = xcalloc(nobj + 1, sizeof *off);
    strbuf_t b = {0};
    strbuf_puts(&b, "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
    off[1] = (long)b.len;
    strbuf_puts(&b, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    off[2] = (long)b.len;
    strbuf_printf(&b, "2 0 obj\n<< /Type /Pages /Count %zu /Kids [", pages);
    for (size_t p = 0; p < pages; p++)
        strbuf_printf(&b, " %zu 0 R", 4 + 2 * p);
    strbuf_puts(&b, " ] >>\nendobj\n");
    off[3] = (long)b.len;
    strbuf_puts(&b, "3 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>\nendobj\n");
    for (size_t p = 0; p < pages; p++) {
        strbuf_t c = {0};
        strbuf_printf(&c, "BT /F1 7 Tf 9 TL 30 %d Td\n", PAGE_H - 50);
        for (size_t i = p * LINES_PER_PAGE; i < n && i < (p + 1) * LINES_PER_PAGE; i++) {
            pdf_string(&c, lines[i]);
            strbuf_puts(&c, " Tj T*\n");
        }
        strbuf_puts(&c, "ET\n");
        size_t page = 4 + 2 * p;
        off[page] = (long)b.len;
        strbuf_printf(&b, "%zu 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
                      "/Resources << /Font << /F1 3 0 R >> >> /Contents %zu 0 R >>\nendobj\n",
                      page, PAGE_W, PAGE_H, page + 1);
        off[page + 1] = (long)b.len;
        strbuf_printf(&b, "%zu 0 obj\n<< /Length %zu >>\nstream\n", page + 1, c.len);
        strbuf_put(&b, c.s, c.len);
        strbuf_puts(&b, "endstream\nendobj\n");
        free(c.s);
    }
    long xref = (long)b.len;
    strbuf_printf(&b, "xref\n0 %zu\n0000000000 65535 f \n", nobj + 1);
    for (size_t i = 1; i <= nobj; i++)
        strbuf_printf(&b, "%010ld 00000 n \n", off[i]);
    strbuf_printf(&b, "trailer\n<< /Size %zu /Root 1 0 R >>\nstartxref\n%ld\n%%%%EOF\n", nobj + 1, xref);
    free(off);
    FILE *f = fopen(path, "wb");
    int rc = f && fwrite(b.s, 1, b.len, f) == b.len ? 0 : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    free(b.s);
    return rc;
}
