# Turns a text file into a C string constant: cmake -DIN=f -DOUT=f.c -P embed.cmake
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE ${OUT} "// generated from ${IN}; do not edit\nconst char anec_prelude_text[] = {${body} 0x00};\n")
