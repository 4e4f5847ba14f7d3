# Embeds the report page (analyzer/html/: template, styles, scripts) into the pymemtrace
# binary as a generated header of string literals, regenerated whenever an asset changes.
# Included from the top CMakeLists.txt right after the pmt_analyzer target is defined.
set(PMT_HTML_DIR ${CMAKE_SOURCE_DIR}/analyzer/html)
set(PMT_HTML_ASSETS report.html report.css util.js timeline.js flame.js main.js)
list(TRANSFORM PMT_HTML_ASSETS PREPEND ${PMT_HTML_DIR}/ OUTPUT_VARIABLE PMT_HTML_ASSET_PATHS)
set(PMT_HTML_HEADER ${CMAKE_BINARY_DIR}/generated/pmt_html_assets.hpp)
add_custom_command(
  OUTPUT ${PMT_HTML_HEADER}
  COMMAND ${CMAKE_COMMAND} -DOUT=${PMT_HTML_HEADER} -DDIR=${PMT_HTML_DIR} -P
          ${PMT_HTML_DIR}/embed_assets.cmake
  DEPENDS ${PMT_HTML_ASSET_PATHS} ${PMT_HTML_DIR}/embed_assets.cmake
  COMMENT "Embedding the HTML report page")
target_sources(pmt_analyzer PRIVATE ${PMT_HTML_HEADER})
target_include_directories(pmt_analyzer PRIVATE ${CMAKE_BINARY_DIR}/generated)
