/* SPDX-License-Identifier: MIT */
/*
 * The daemon without main, for the HTTP and JSON fuzz targets: the example
 * program's configuration, a fresh in-memory store and ledger per input, the
 * writer, scheduler, followers and API wired as gpuledgerd wires them, and
 * the real server on a Unix socket. harness_feed() connects, sends the bytes,
 * closes its half, runs the loop until the server closes the connection (or
 * the loop has nothing more to do), then shuts everything down and checks
 * that the loop closes with no handle left.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Sends len bytes as one client's stream; returns the bytes answered. */
size_t harness_feed(const uint8_t *data, size_t len);
