// slip-loadgen's output: the table on stdout, result.json and result.csv in the run folder.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "engine.h"

namespace slip::loadgen {

using Json = nlohmann::ordered_json;

// The result as JSON: config (every flag as given), git revision, time, counts, percentiles in us.
Json result_json(const LoadConfig& cfg, const LoadResult& r, const Json& config);
void print_table(const LoadConfig& cfg, const LoadResult& r);
// Writes dir/result.json and dir/result.csv (creating dir); throws std::runtime_error with the cause.
void write_run_folder(const std::string& dir, const Json& result);

}  // namespace slip::loadgen
