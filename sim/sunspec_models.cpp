/// @file sunspec_models.cpp
/// SunSpec model definitions served by the simulator (see sunspec_models.hpp).
///
/// Transcribed from the SunSpec Alliance's published model definitions, repository sunspec/models,
/// files json/model_<ID>.json (snapshot of 2026-04-22, commit 7abdf8982d53): for each point its name,
/// offset, size, type, access (RW or R), mandatory flag (M), units and scale-factor point, in the
/// order of the file. Offsets count from the model's ID register (ID = 0, L = 1, first point = 2), so
/// L = (offset of the last point + its size) - 2. Facts only: the tables were typed from the
/// definitions' fields, no code was taken from anywhere.

#include "sunspec_models.hpp"

#include <algorithm>

namespace eqd::sim::sunspec {

namespace {

using T = PointType;

// model 1 (common): L = 66
constexpr Point kModel1[] = {
    {"Mn", 2, 16, T::string, false, true, "", ""},   {"Md", 18, 16, T::string, false, true, "", ""},
    {"Opt", 34, 8, T::string, false, false, "", ""}, {"Vr", 42, 8, T::string, false, false, "", ""},
    {"SN", 50, 16, T::string, false, true, "", ""},  {"DA", 66, 1, T::uint16, true, false, "", ""},
    {"Pad", 67, 1, T::pad, false, false, "", ""},
};
// model 101 (inverter_single_phase): L = 50. The same points at the same offsets as 103; the phase B and C
// currents and voltages are optional ("M" only in 103).
constexpr Point kModel101[] = {
    {"A", 2, 1, T::uint16, false, true, "A", "A_SF"},
    {"AphA", 3, 1, T::uint16, false, true, "A", "A_SF"},
    {"AphB", 4, 1, T::uint16, false, false, "A", "A_SF"},
    {"AphC", 5, 1, T::uint16, false, false, "A", "A_SF"},
    {"A_SF", 6, 1, T::sunssf, false, true, "", ""},
    {"PPVphAB", 7, 1, T::uint16, false, false, "V", "V_SF"},
    {"PPVphBC", 8, 1, T::uint16, false, false, "V", "V_SF"},
    {"PPVphCA", 9, 1, T::uint16, false, false, "V", "V_SF"},
    {"PhVphA", 10, 1, T::uint16, false, true, "V", "V_SF"},
    {"PhVphB", 11, 1, T::uint16, false, false, "V", "V_SF"},
    {"PhVphC", 12, 1, T::uint16, false, false, "V", "V_SF"},
    {"V_SF", 13, 1, T::sunssf, false, true, "", ""},
    {"W", 14, 1, T::int16, false, true, "W", "W_SF"},
    {"W_SF", 15, 1, T::sunssf, false, true, "", ""},
    {"Hz", 16, 1, T::uint16, false, true, "Hz", "Hz_SF"},
    {"Hz_SF", 17, 1, T::sunssf, false, true, "", ""},
    {"VA", 18, 1, T::int16, false, false, "VA", "VA_SF"},
    {"VA_SF", 19, 1, T::sunssf, false, false, "", ""},
    {"VAr", 20, 1, T::int16, false, false, "var", "VAr_SF"},
    {"VAr_SF", 21, 1, T::sunssf, false, false, "", ""},
    {"PF", 22, 1, T::int16, false, false, "Pct", "PF_SF"},
    {"PF_SF", 23, 1, T::sunssf, false, false, "", ""},
    {"WH", 24, 2, T::acc32, false, true, "Wh", "WH_SF"},
    {"WH_SF", 26, 1, T::sunssf, false, true, "", ""},
    {"DCA", 27, 1, T::uint16, false, false, "A", "DCA_SF"},
    {"DCA_SF", 28, 1, T::sunssf, false, false, "", ""},
    {"DCV", 29, 1, T::uint16, false, false, "V", "DCV_SF"},
    {"DCV_SF", 30, 1, T::sunssf, false, false, "", ""},
    {"DCW", 31, 1, T::int16, false, false, "W", "DCW_SF"},
    {"DCW_SF", 32, 1, T::sunssf, false, false, "", ""},
    {"TmpCab", 33, 1, T::int16, false, true, "C", "Tmp_SF"},
    {"TmpSnk", 34, 1, T::int16, false, false, "C", "Tmp_SF"},
    {"TmpTrns", 35, 1, T::int16, false, false, "C", "Tmp_SF"},
    {"TmpOt", 36, 1, T::int16, false, false, "C", "Tmp_SF"},
    {"Tmp_SF", 37, 1, T::sunssf, false, true, "", ""},
    {"St", 38, 1, T::enum16, false, true, "", ""},
    {"StVnd", 39, 1, T::enum16, false, false, "", ""},
    {"Evt1", 40, 2, T::bitfield32, false, true, "", ""},
    {"Evt2", 42, 2, T::bitfield32, false, true, "", ""},
    {"EvtVnd1", 44, 2, T::bitfield32, false, false, "", ""},
    {"EvtVnd2", 46, 2, T::bitfield32, false, false, "", ""},
    {"EvtVnd3", 48, 2, T::bitfield32, false, false, "", ""},
    {"EvtVnd4", 50, 2, T::bitfield32, false, false, "", ""},
};
// model 103 (inverter_three_phase): L = 50
constexpr Point kModel103[] = {
    {"A", 2, 1, T::uint16, false, true, "A", "A_SF"},
    {"AphA", 3, 1, T::uint16, false, true, "A", "A_SF"},
    {"AphB", 4, 1, T::uint16, false, true, "A", "A_SF"},
    {"AphC", 5, 1, T::uint16, false, true, "A", "A_SF"},
    {"A_SF", 6, 1, T::sunssf, false, true, "", ""},
    {"PPVphAB", 7, 1, T::uint16, false, false, "V", "V_SF"},
    {"PPVphBC", 8, 1, T::uint16, false, false, "V", "V_SF"},
    {"PPVphCA", 9, 1, T::uint16, false, false, "V", "V_SF"},
    {"PhVphA", 10, 1, T::uint16, false, true, "V", "V_SF"},
    {"PhVphB", 11, 1, T::uint16, false, true, "V", "V_SF"},
    {"PhVphC", 12, 1, T::uint16, false, true, "V", "V_SF"},
    {"V_SF", 13, 1, T::sunssf, false, true, "", ""},
    {"W", 14, 1, T::int16, false, true, "W", "W_SF"},
    {"W_SF", 15, 1, T::sunssf, false, true, "", ""},
    {"Hz", 16, 1, T::uint16, false, true, "Hz", "Hz_SF"},
    {"Hz_SF", 17, 1, T::sunssf, false, true, "", ""},
    {"VA", 18, 1, T::int16, false, false, "VA", "VA_SF"},
    {"VA_SF", 19, 1, T::sunssf, false, false, "", ""},
    {"VAr", 20, 1, T::int16, false, false, "var", "VAr_SF"},
    {"VAr_SF", 21, 1, T::sunssf, false, false, "", ""},
    {"PF", 22, 1, T::int16, false, false, "Pct", "PF_SF"},
    {"PF_SF", 23, 1, T::sunssf, false, false, "", ""},
    {"WH", 24, 2, T::acc32, false, true, "Wh", "WH_SF"},
    {"WH_SF", 26, 1, T::sunssf, false, true, "", ""},
    {"DCA", 27, 1, T::uint16, false, false, "A", "DCA_SF"},
    {"DCA_SF", 28, 1, T::sunssf, false, false, "", ""},
    {"DCV", 29, 1, T::uint16, false, false, "V", "DCV_SF"},
    {"DCV_SF", 30, 1, T::sunssf, false, false, "", ""},
    {"DCW", 31, 1, T::int16, false, false, "W", "DCW_SF"},
    {"DCW_SF", 32, 1, T::sunssf, false, false, "", ""},
    {"TmpCab", 33, 1, T::int16, false, true, "C", "Tmp_SF"},
    {"TmpSnk", 34, 1, T::int16, false, false, "C", "Tmp_SF"},
    {"TmpTrns", 35, 1, T::int16, false, false, "C", "Tmp_SF"},
    {"TmpOt", 36, 1, T::int16, false, false, "C", "Tmp_SF"},
    {"Tmp_SF", 37, 1, T::sunssf, false, true, "", ""},
    {"St", 38, 1, T::enum16, false, true, "", ""},
    {"StVnd", 39, 1, T::enum16, false, false, "", ""},
    {"Evt1", 40, 2, T::bitfield32, false, true, "", ""},
    {"Evt2", 42, 2, T::bitfield32, false, true, "", ""},
    {"EvtVnd1", 44, 2, T::bitfield32, false, false, "", ""},
    {"EvtVnd2", 46, 2, T::bitfield32, false, false, "", ""},
    {"EvtVnd3", 48, 2, T::bitfield32, false, false, "", ""},
    {"EvtVnd4", 50, 2, T::bitfield32, false, false, "", ""},
};
// model 113 (inverter_three_phase_float): L = 60
constexpr Point kModel113[] = {
    {"A", 2, 2, T::float32, false, true, "A", ""},           {"AphA", 4, 2, T::float32, false, true, "A", ""},
    {"AphB", 6, 2, T::float32, false, true, "A", ""},        {"AphC", 8, 2, T::float32, false, true, "A", ""},
    {"PPVphAB", 10, 2, T::float32, false, false, "V", ""},   {"PPVphBC", 12, 2, T::float32, false, false, "V", ""},
    {"PPVphCA", 14, 2, T::float32, false, false, "V", ""},   {"PhVphA", 16, 2, T::float32, false, true, "V", ""},
    {"PhVphB", 18, 2, T::float32, false, true, "V", ""},     {"PhVphC", 20, 2, T::float32, false, true, "V", ""},
    {"W", 22, 2, T::float32, false, true, "W", ""},          {"Hz", 24, 2, T::float32, false, true, "Hz", ""},
    {"VA", 26, 2, T::float32, false, false, "VA", ""},       {"VAr", 28, 2, T::float32, false, false, "var", ""},
    {"PF", 30, 2, T::float32, false, false, "Pct", ""},      {"WH", 32, 2, T::float32, false, true, "Wh", ""},
    {"DCA", 34, 2, T::float32, false, false, "A", ""},       {"DCV", 36, 2, T::float32, false, false, "V", ""},
    {"DCW", 38, 2, T::float32, false, false, "W", ""},       {"TmpCab", 40, 2, T::float32, false, true, "C", ""},
    {"TmpSnk", 42, 2, T::float32, false, false, "C", ""},    {"TmpTrns", 44, 2, T::float32, false, false, "C", ""},
    {"TmpOt", 46, 2, T::float32, false, false, "C", ""},     {"St", 48, 1, T::enum16, false, true, "", ""},
    {"StVnd", 49, 1, T::enum16, false, false, "", ""},       {"Evt1", 50, 2, T::bitfield32, false, true, "", ""},
    {"Evt2", 52, 2, T::bitfield32, false, true, "", ""},     {"EvtVnd1", 54, 2, T::bitfield32, false, false, "", ""},
    {"EvtVnd2", 56, 2, T::bitfield32, false, false, "", ""}, {"EvtVnd3", 58, 2, T::bitfield32, false, false, "", ""},
    {"EvtVnd4", 60, 2, T::bitfield32, false, false, "", ""},
};

// model 124 (storage_basic): L = 24
constexpr Point kModel124[] = {
    {"WChaMax", 2, 1, T::uint16, true, true, "W", "WChaMax_SF"},
    {"WChaGra", 3, 1, T::uint16, true, true, "% WChaMax/sec", "WChaDisChaGra_SF"},
    {"WDisChaGra", 4, 1, T::uint16, true, true, "% WChaMax/sec", "WChaDisChaGra_SF"},
    {"StorCtl_Mod", 5, 1, T::bitfield16, true, true, "", ""},
    {"VAChaMax", 6, 1, T::uint16, true, false, "VA", "VAChaMax_SF"},
    {"MinRsvPct", 7, 1, T::uint16, true, false, "% WChaMax", "MinRsvPct_SF"},
    {"ChaState", 8, 1, T::uint16, false, false, "% AhrRtg", "ChaState_SF"},
    {"StorAval", 9, 1, T::uint16, false, false, "AH", "StorAval_SF"},
    {"InBatV", 10, 1, T::uint16, false, false, "V", "InBatV_SF"},
    {"ChaSt", 11, 1, T::enum16, false, false, "", ""},
    {"OutWRte", 12, 1, T::int16, true, false, "% WDisChaMax", "InOutWRte_SF"},
    {"InWRte", 13, 1, T::int16, true, false, "% WChaMax", "InOutWRte_SF"},
    {"InOutWRte_WinTms", 14, 1, T::uint16, true, false, "Secs", ""},
    {"InOutWRte_RvrtTms", 15, 1, T::uint16, true, false, "Secs", ""},
    {"InOutWRte_RmpTms", 16, 1, T::uint16, true, false, "Secs", ""},
    {"ChaGriSet", 17, 1, T::enum16, true, false, "", ""},
    {"WChaMax_SF", 18, 1, T::sunssf, false, true, "", ""},
    {"WChaDisChaGra_SF", 19, 1, T::sunssf, false, true, "", ""},
    {"VAChaMax_SF", 20, 1, T::sunssf, false, false, "", ""},
    {"MinRsvPct_SF", 21, 1, T::sunssf, false, false, "", ""},
    {"ChaState_SF", 22, 1, T::sunssf, false, false, "", ""},
    {"StorAval_SF", 23, 1, T::sunssf, false, false, "", ""},
    {"InBatV_SF", 24, 1, T::sunssf, false, false, "", ""},
    {"InOutWRte_SF", 25, 1, T::sunssf, false, false, "", ""},
};
// model 201 (ac_meter_an_or_ab): L = 105
constexpr Point kModel201[] = {
    {"A", 2, 1, T::int16, false, true, "A", "A_SF"},
    {"AphA", 3, 1, T::int16, false, true, "A", "A_SF"},
    {"AphB", 4, 1, T::int16, false, false, "A", "A_SF"},
    {"AphC", 5, 1, T::int16, false, false, "A", "A_SF"},
    {"A_SF", 6, 1, T::sunssf, false, true, "", ""},
    {"PhV", 7, 1, T::int16, false, false, "V", "V_SF"},
    {"PhVphA", 8, 1, T::int16, false, false, "V", "V_SF"},
    {"PhVphB", 9, 1, T::int16, false, false, "V", "V_SF"},
    {"PhVphC", 10, 1, T::int16, false, false, "V", "V_SF"},
    {"PPV", 11, 1, T::int16, false, false, "V", "V_SF"},
    {"PPVphAB", 12, 1, T::int16, false, false, "V", "V_SF"},
    {"PPVphBC", 13, 1, T::int16, false, false, "V", "V_SF"},
    {"PPVphCA", 14, 1, T::int16, false, false, "V", "V_SF"},
    {"V_SF", 15, 1, T::sunssf, false, true, "", ""},
    {"Hz", 16, 1, T::int16, false, true, "Hz", "Hz_SF"},
    {"Hz_SF", 17, 1, T::sunssf, false, false, "", ""},
    {"W", 18, 1, T::int16, false, true, "W", "W_SF"},
    {"WphA", 19, 1, T::int16, false, false, "W", "W_SF"},
    {"WphB", 20, 1, T::int16, false, false, "W", "W_SF"},
    {"WphC", 21, 1, T::int16, false, false, "W", "W_SF"},
    {"W_SF", 22, 1, T::sunssf, false, true, "", ""},
    {"VA", 23, 1, T::int16, false, false, "VA", "VA_SF"},
    {"VAphA", 24, 1, T::int16, false, false, "VA", "VA_SF"},
    {"VAphB", 25, 1, T::int16, false, false, "VA", "VA_SF"},
    {"VAphC", 26, 1, T::int16, false, false, "VA", "VA_SF"},
    {"VA_SF", 27, 1, T::sunssf, false, false, "", ""},
    {"VAR", 28, 1, T::int16, false, false, "var", "VAR_SF"},
    {"VARphA", 29, 1, T::int16, false, false, "var", "VAR_SF"},
    {"VARphB", 30, 1, T::int16, false, false, "var", "VAR_SF"},
    {"VARphC", 31, 1, T::int16, false, false, "var", "VAR_SF"},
    {"VAR_SF", 32, 1, T::sunssf, false, false, "", ""},
    {"PF", 33, 1, T::int16, false, false, "Pct", "PF_SF"},
    {"PFphA", 34, 1, T::int16, false, false, "Pct", "PF_SF"},
    {"PFphB", 35, 1, T::int16, false, false, "Pct", "PF_SF"},
    {"PFphC", 36, 1, T::int16, false, false, "Pct", "PF_SF"},
    {"PF_SF", 37, 1, T::sunssf, false, false, "", ""},
    {"TotWhExp", 38, 2, T::acc32, false, true, "Wh", "TotWh_SF"},
    {"TotWhExpPhA", 40, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWhExpPhB", 42, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWhExpPhC", 44, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWhImp", 46, 2, T::acc32, false, true, "Wh", "TotWh_SF"},
    {"TotWhImpPhA", 48, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWhImpPhB", 50, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWhImpPhC", 52, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWh_SF", 54, 1, T::sunssf, false, true, "", ""},
    {"TotVAhExp", 55, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhExpPhA", 57, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhExpPhB", 59, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhExpPhC", 61, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhImp", 63, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhImpPhA", 65, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhImpPhB", 67, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhImpPhC", 69, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAh_SF", 71, 1, T::sunssf, false, false, "", ""},
    {"TotVArhImpQ1", 72, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ1PhA", 74, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ1PhB", 76, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ1PhC", 78, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ2", 80, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ2PhA", 82, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ2PhB", 84, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ2PhC", 86, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ3", 88, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ3PhA", 90, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ3PhB", 92, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ3PhC", 94, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ4", 96, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ4PhA", 98, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ4PhB", 100, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ4PhC", 102, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArh_SF", 104, 1, T::sunssf, false, false, "", ""},
    {"Evt", 105, 2, T::bitfield32, false, true, "", ""},
};
// model 203 (ac_meter_abcn): L = 105
constexpr Point kModel203[] = {
    {"A", 2, 1, T::int16, false, true, "A", "A_SF"},
    {"AphA", 3, 1, T::int16, false, true, "A", "A_SF"},
    {"AphB", 4, 1, T::int16, false, true, "A", "A_SF"},
    {"AphC", 5, 1, T::int16, false, true, "A", "A_SF"},
    {"A_SF", 6, 1, T::sunssf, false, true, "", ""},
    {"PhV", 7, 1, T::int16, false, true, "V", "V_SF"},
    {"PhVphA", 8, 1, T::int16, false, true, "V", "V_SF"},
    {"PhVphB", 9, 1, T::int16, false, true, "V", "V_SF"},
    {"PhVphC", 10, 1, T::int16, false, true, "V", "V_SF"},
    {"PPV", 11, 1, T::int16, false, true, "V", "V_SF"},
    {"PhVphAB", 12, 1, T::int16, false, true, "V", "V_SF"},
    {"PhVphBC", 13, 1, T::int16, false, true, "V", "V_SF"},
    {"PhVphCA", 14, 1, T::int16, false, true, "V", "V_SF"},
    {"V_SF", 15, 1, T::sunssf, false, true, "", ""},
    {"Hz", 16, 1, T::int16, false, true, "Hz", "Hz_SF"},
    {"Hz_SF", 17, 1, T::sunssf, false, false, "", ""},
    {"W", 18, 1, T::int16, false, true, "W", "W_SF"},
    {"WphA", 19, 1, T::int16, false, false, "W", "W_SF"},
    {"WphB", 20, 1, T::int16, false, false, "W", "W_SF"},
    {"WphC", 21, 1, T::int16, false, false, "W", "W_SF"},
    {"W_SF", 22, 1, T::sunssf, false, true, "", ""},
    {"VA", 23, 1, T::int16, false, false, "VA", "VA_SF"},
    {"VAphA", 24, 1, T::int16, false, false, "VA", "VA_SF"},
    {"VAphB", 25, 1, T::int16, false, false, "VA", "VA_SF"},
    {"VAphC", 26, 1, T::int16, false, false, "VA", "VA_SF"},
    {"VA_SF", 27, 1, T::sunssf, false, false, "", ""},
    {"VAR", 28, 1, T::int16, false, false, "var", "VAR_SF"},
    {"VARphA", 29, 1, T::int16, false, false, "var", "VAR_SF"},
    {"VARphB", 30, 1, T::int16, false, false, "var", "VAR_SF"},
    {"VARphC", 31, 1, T::int16, false, false, "var", "VAR_SF"},
    {"VAR_SF", 32, 1, T::sunssf, false, false, "", ""},
    {"PF", 33, 1, T::int16, false, false, "Pct", "PF_SF"},
    {"PFphA", 34, 1, T::int16, false, false, "Pct", "PF_SF"},
    {"PFphB", 35, 1, T::int16, false, false, "Pct", "PF_SF"},
    {"PFphC", 36, 1, T::int16, false, false, "Pct", "PF_SF"},
    {"PF_SF", 37, 1, T::sunssf, false, false, "", ""},
    {"TotWhExp", 38, 2, T::acc32, false, true, "Wh", "TotWh_SF"},
    {"TotWhExpPhA", 40, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWhExpPhB", 42, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWhExpPhC", 44, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWhImp", 46, 2, T::acc32, false, true, "Wh", "TotWh_SF"},
    {"TotWhImpPhA", 48, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWhImpPhB", 50, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWhImpPhC", 52, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWh_SF", 54, 1, T::sunssf, false, true, "", ""},
    {"TotVAhExp", 55, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhExpPhA", 57, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhExpPhB", 59, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhExpPhC", 61, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhImp", 63, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhImpPhA", 65, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhImpPhB", 67, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhImpPhC", 69, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAh_SF", 71, 1, T::sunssf, false, false, "", ""},
    {"TotVArhImpQ1", 72, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ1PhA", 74, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ1PhB", 76, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ1PhC", 78, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ2", 80, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ2PhA", 82, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ2PhB", 84, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ2PhC", 86, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ3", 88, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ3PhA", 90, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ3PhB", 92, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ3PhC", 94, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ4", 96, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ4PhA", 98, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ4PhB", 100, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ4PhC", 102, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArh_SF", 104, 1, T::sunssf, false, false, "", ""},
    {"Evt", 105, 2, T::bitfield32, false, true, "", ""},
};
// model 204 (ac_meter_abc): L = 105
constexpr Point kModel204[] = {
    {"A", 2, 1, T::int16, false, true, "A", "A_SF"},
    {"AphA", 3, 1, T::int16, false, true, "A", "A_SF"},
    {"AphB", 4, 1, T::int16, false, true, "A", "A_SF"},
    {"AphC", 5, 1, T::int16, false, true, "A", "A_SF"},
    {"A_SF", 6, 1, T::sunssf, false, true, "", ""},
    {"PhV", 7, 1, T::int16, false, false, "V", "V_SF"},
    {"PhVphA", 8, 1, T::int16, false, false, "V", "V_SF"},
    {"PhVphB", 9, 1, T::int16, false, false, "V", "V_SF"},
    {"PhVphC", 10, 1, T::int16, false, false, "V", "V_SF"},
    {"PPV", 11, 1, T::int16, false, true, "V", "V_SF"},
    {"PhVphAB", 12, 1, T::int16, false, true, "V", "V_SF"},
    {"PhVphBC", 13, 1, T::int16, false, true, "V", "V_SF"},
    {"PhVphCA", 14, 1, T::int16, false, true, "V", "V_SF"},
    {"V_SF", 15, 1, T::sunssf, false, true, "", ""},
    {"Hz", 16, 1, T::int16, false, true, "Hz", "Hz_SF"},
    {"Hz_SF", 17, 1, T::sunssf, false, false, "", ""},
    {"W", 18, 1, T::int16, false, true, "W", "W_SF"},
    {"WphA", 19, 1, T::int16, false, false, "W", "W_SF"},
    {"WphB", 20, 1, T::int16, false, false, "W", "W_SF"},
    {"WphC", 21, 1, T::int16, false, false, "W", "W_SF"},
    {"W_SF", 22, 1, T::sunssf, false, true, "", ""},
    {"VA", 23, 1, T::int16, false, false, "VA", "VA_SF"},
    {"VAphA", 24, 1, T::int16, false, false, "VA", "VA_SF"},
    {"VAphB", 25, 1, T::int16, false, false, "VA", "VA_SF"},
    {"VAphC", 26, 1, T::int16, false, false, "VA", "VA_SF"},
    {"VA_SF", 27, 1, T::sunssf, false, false, "", ""},
    {"VAR", 28, 1, T::int16, false, false, "var", "VAR_SF"},
    {"VARphA", 29, 1, T::int16, false, false, "var", "VAR_SF"},
    {"VARphB", 30, 1, T::int16, false, false, "var", "VAR_SF"},
    {"VARphC", 31, 1, T::int16, false, false, "var", "VAR_SF"},
    {"VAR_SF", 32, 1, T::sunssf, false, false, "", ""},
    {"PF", 33, 1, T::int16, false, false, "Pct", "PF_SF"},
    {"PFphA", 34, 1, T::int16, false, false, "Pct", "PF_SF"},
    {"PFphB", 35, 1, T::int16, false, false, "Pct", "PF_SF"},
    {"PFphC", 36, 1, T::int16, false, false, "Pct", "PF_SF"},
    {"PF_SF", 37, 1, T::sunssf, false, false, "", ""},
    {"TotWhExp", 38, 2, T::acc32, false, true, "Wh", "TotWh_SF"},
    {"TotWhExpPhA", 40, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWhExpPhB", 42, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWhExpPhC", 44, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWhImp", 46, 2, T::acc32, false, true, "Wh", "TotWh_SF"},
    {"TotWhImpPhA", 48, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWhImpPhB", 50, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWhImpPhC", 52, 2, T::acc32, false, false, "Wh", "TotWh_SF"},
    {"TotWh_SF", 54, 1, T::sunssf, false, true, "", ""},
    {"TotVAhExp", 55, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhExpPhA", 57, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhExpPhB", 59, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhExpPhC", 61, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhImp", 63, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhImpPhA", 65, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhImpPhB", 67, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAhImpPhC", 69, 2, T::acc32, false, false, "VAh", "TotVAh_SF"},
    {"TotVAh_SF", 71, 1, T::sunssf, false, false, "", ""},
    {"TotVArhImpQ1", 72, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ1PhA", 74, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ1PhB", 76, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ1PhC", 78, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ2", 80, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ2PhA", 82, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ2PhB", 84, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhImpQ2PhC", 86, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ3", 88, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ3PhA", 90, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ3PhB", 92, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ3PhC", 94, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ4", 96, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ4PhA", 98, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ4PhB", 100, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArhExpQ4PhC", 102, 2, T::acc32, false, false, "varh", "TotVArh_SF"},
    {"TotVArh_SF", 104, 1, T::sunssf, false, false, "", ""},
    {"Evt", 105, 2, T::bitfield32, false, true, "", ""},
};
// model 802 (battery): L = 62
constexpr Point kModel802[] = {
    {"AHRtg", 2, 1, T::uint16, false, true, "Ah", "AHRtg_SF"},
    {"WHRtg", 3, 1, T::uint16, false, true, "Wh", "WHRtg_SF"},
    {"WChaRteMax", 4, 1, T::uint16, false, true, "W", "WChaDisChaMax_SF"},
    {"WDisChaRteMax", 5, 1, T::uint16, false, true, "W", "WChaDisChaMax_SF"},
    {"DisChaRte", 6, 1, T::uint16, false, false, "%WHRtg", "DisChaRte_SF"},
    {"SoCMax", 7, 1, T::uint16, false, false, "%WHRtg", "SoC_SF"},
    {"SoCMin", 8, 1, T::uint16, false, false, "%WHRtg", "SoC_SF"},
    {"SocRsvMax", 9, 1, T::uint16, true, false, "%WHRtg", "SoC_SF"},
    {"SoCRsvMin", 10, 1, T::uint16, true, false, "%WHRtg", "SoC_SF"},
    {"SoC", 11, 1, T::uint16, false, true, "%WHRtg", "SoC_SF"},
    {"DoD", 12, 1, T::uint16, false, false, "%", "DoD_SF"},
    {"SoH", 13, 1, T::uint16, false, false, "%", "SoH_SF"},
    {"NCyc", 14, 2, T::uint32, false, false, "", ""},
    {"ChaSt", 16, 1, T::enum16, false, false, "", ""},
    {"LocRemCtl", 17, 1, T::enum16, false, true, "", ""},
    {"Hb", 18, 1, T::uint16, false, false, "", ""},
    {"CtrlHb", 19, 1, T::uint16, true, false, "", ""},
    {"AlmRst", 20, 1, T::uint16, true, true, "", ""},
    {"Typ", 21, 1, T::enum16, false, true, "", ""},
    {"State", 22, 1, T::enum16, false, true, "", ""},
    {"StateVnd", 23, 1, T::enum16, false, false, "", ""},
    {"WarrDt", 24, 2, T::uint32, false, false, "", ""},
    {"Evt1", 26, 2, T::bitfield32, false, true, "", ""},
    {"Evt2", 28, 2, T::bitfield32, false, true, "", ""},
    {"EvtVnd1", 30, 2, T::bitfield32, false, true, "", ""},
    {"EvtVnd2", 32, 2, T::bitfield32, false, true, "", ""},
    {"V", 34, 1, T::uint16, false, true, "V", "V_SF"},
    {"VMax", 35, 1, T::uint16, false, false, "V", "V_SF"},
    {"VMin", 36, 1, T::uint16, false, false, "V", "V_SF"},
    {"CellVMax", 37, 1, T::uint16, false, false, "V", "CellV_SF"},
    {"CellVMaxStr", 38, 1, T::uint16, false, false, "", ""},
    {"CellVMaxMod", 39, 1, T::uint16, false, false, "", ""},
    {"CellVMin", 40, 1, T::uint16, false, false, "V", "CellV_SF"},
    {"CellVMinStr", 41, 1, T::uint16, false, false, "", ""},
    {"CellVMinMod", 42, 1, T::uint16, false, false, "", ""},
    {"CellVAvg", 43, 1, T::uint16, false, false, "V", "CellV_SF"},
    {"A", 44, 1, T::int16, false, true, "A", "A_SF"},
    {"AChaMax", 45, 1, T::uint16, false, false, "A", "AMax_SF"},
    {"ADisChaMax", 46, 1, T::uint16, false, false, "A", "AMax_SF"},
    {"W", 47, 1, T::int16, false, true, "W", "W_SF"},
    {"ReqInvState", 48, 1, T::enum16, false, false, "", ""},
    {"ReqW", 49, 1, T::int16, false, false, "W", "W_SF"},
    {"SetOp", 50, 1, T::enum16, true, true, "", ""},
    {"SetInvState", 51, 1, T::enum16, true, true, "", ""},
    {"AHRtg_SF", 52, 1, T::sunssf, false, true, "", ""},
    {"WHRtg_SF", 53, 1, T::sunssf, false, true, "", ""},
    {"WChaDisChaMax_SF", 54, 1, T::sunssf, false, true, "", ""},
    {"DisChaRte_SF", 55, 1, T::sunssf, false, false, "", ""},
    {"SoC_SF", 56, 1, T::sunssf, false, true, "", ""},
    {"DoD_SF", 57, 1, T::sunssf, false, false, "", ""},
    {"SoH_SF", 58, 1, T::sunssf, false, false, "", ""},
    {"V_SF", 59, 1, T::sunssf, false, true, "", ""},
    {"CellV_SF", 60, 1, T::sunssf, false, true, "", ""},
    {"A_SF", 61, 1, T::sunssf, false, true, "", ""},
    {"AMax_SF", 62, 1, T::sunssf, false, true, "", ""},
    {"W_SF", 63, 1, T::sunssf, false, false, "", ""},
};

template <std::size_t N>
constexpr ModelDef def(std::uint16_t id, std::string_view name, const Point (&points)[N]) {
  const Point& last = points[N - 1];
  return ModelDef{id, name, static_cast<std::uint16_t>(last.offset + last.size - 2), std::span<const Point>(points, N)};
}

constexpr ModelDef kModels[] = {
    def(1, "common", kModel1),
    def(103, "inverter_three_phase", kModel103),
    def(113, "inverter_three_phase_float", kModel113),
    def(124, "storage_basic", kModel124),
    def(201, "ac_meter_an_or_ab", kModel201),
    def(203, "ac_meter_abcn", kModel203),
    def(204, "ac_meter_abc", kModel204),
    def(802, "battery", kModel802),
    def(101, "inverter_single_phase", kModel101),
};

// The lengths the definitions give (their "L" as the points add up), checked at compile time so a
// typing slip in a table cannot go unnoticed.
static_assert(kModels[0].length == 66 && kModels[1].length == 50 && kModels[2].length == 60);
static_assert(kModels[3].length == 24);
static_assert(kModels[4].length == 105 && kModels[5].length == 105 && kModels[6].length == 105);
static_assert(kModels[7].length == 62 && kModels[8].length == 50);

}  // namespace

const ModelDef* find_model(std::uint16_t id) noexcept {
  for (const ModelDef& m : kModels)
    if (m.id == id) return &m;
  return nullptr;
}

const Point* ModelDef::find(std::string_view point) const noexcept {
  const auto it = std::find_if(points.begin(), points.end(), [&](const Point& p) { return p.name == point; });
  return it == points.end() ? nullptr : &*it;
}

std::span<const std::uint16_t> served_model_ids() noexcept {
  static constexpr std::uint16_t kIds[] = {1, 101, 103, 113, 124, 201, 203, 204, 802};
  return kIds;
}

std::uint16_t not_implemented_word(PointType t, std::size_t word) noexcept {
  switch (t) {
    case PointType::int16:
    case PointType::sunssf:
    case PointType::pad:
      return 0x8000;
    case PointType::int32:
      return word == 0 ? 0x8000 : 0x0000;
    case PointType::uint16:
    case PointType::enum16:
    case PointType::bitfield16:
    case PointType::uint32:
    case PointType::bitfield32:
      return 0xFFFF;
    case PointType::float32:
      return word == 0 ? 0x7FC0 : 0x0000;  // NaN
    case PointType::acc32:
    case PointType::string:
      return 0x0000;
  }
  return 0xFFFF;
}

}  // namespace eqd::sim::sunspec
